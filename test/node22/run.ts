/**
 * `npm run test:node22`: the whole test suite (the `single` vitest project) again on Node 22, so
 * both Node lines the package supports (`engines: >=20`) are tested in every CI run. The machines
 * run Node 20; Node 22 comes from the npm registry's `node` package (`npx -p node@22`), as the
 * conformance suite's does.
 *
 * The one native addon, better-sqlite3 (the per-user token store), is built for the Node that
 * installed it, whose ABI Node 22's differs from. It is compiled once more for Node 22 — with the
 * headers of the registry's `node-<platform>-<arch>` package, since these machines reach no other
 * download site — into a cache under node_modules/.cache, and put in place only for the run: the
 * Node 20 build is moved aside first and put back after, also after a run that died half-way.
 * @module
 */
import { execFileSync, spawn } from "node:child_process"
import { copyFileSync, cpSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { repoRoot } from "../helpers/processes.js"

const cache = join(repoRoot, "node_modules/.cache/aperture-node22")
const sqliteRoot = join(repoRoot, "node_modules/better-sqlite3")
const installedAddon = join(sqliteRoot, "build/Release/better_sqlite3.node")
/** Where the Node 20 build waits while Node 22 runs: its presence means it must go back. */
const setAside = join(cache, "better_sqlite3.node-for-installed-node")

const log = (line: string) => console.log(`[node22] ${line}`)

/** Node 22's executable, fetched from the registry by npx (cached after the first time). */
const node22 = (): string =>
  execFileSync("npx", ["-y", "-p", "node@22", "--", "node", "-p", "process.execPath"], { encoding: "utf8" }).trim()

const versionsOf = (node: string) =>
  JSON.parse(execFileSync(node, ["-p", "JSON.stringify(process.versions)"], { encoding: "utf8" })) as {
    readonly node: string
    readonly modules: string
  }

/** Node's C headers for `version`, from the registry's platform package (its tarball carries include/node). */
const headersFor = (version: string): string => {
  const dir = join(cache, `headers-${version}`)
  if (existsSync(join(dir, "include/node/node.h"))) return dir
  const pkg = `node-${process.platform}-${process.arch}@${version}`
  log(`fetching Node ${version}'s headers (${pkg})`)
  mkdirSync(dir, { recursive: true })
  const tarball = execFileSync("npm", ["pack", pkg, "--pack-destination", dir, "--silent"], { encoding: "utf8" }).trim().split("\n").pop()!
  execFileSync("tar", ["xzf", join(dir, tarball), "-C", dir, "--strip-components=1", "package/include"])
  rmSync(join(dir, tarball))
  return dir
}

/** node-gyp as npm carries it (the one that built the installed addon). */
const nodeGyp = (): string => {
  const npmCli = process.env["npm_execpath"]
  const candidates = [
    ...(npmCli !== undefined ? [join(dirname(npmCli), "../node_modules/node-gyp/bin/node-gyp.js")] : []),
    join(dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js")
  ]
  const found = candidates.find((candidate) => existsSync(candidate))
  if (found === undefined) throw new Error(`node-gyp not found (looked at ${candidates.join(", ")})`)
  return found
}

/** better-sqlite3 compiled for `node` (ABI `abi`), built once and kept in the cache. */
const sqliteAddonFor = (node: string, version: string, abi: string): string => {
  const built = join(cache, `better_sqlite3-abi${abi}.node`)
  if (existsSync(built)) return built
  const headers = headersFor(version)
  const work = join(cache, "better-sqlite3-build")
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  for (const part of ["binding.gyp", "src", "deps", "package.json"]) cpSync(join(sqliteRoot, part), join(work, part), { recursive: true })
  log(`compiling better-sqlite3 for Node ${version} (ABI ${abi}); once, then cached`)
  execFileSync(node, [nodeGyp(), "rebuild", "--release", `--nodedir=${headers}`, "-j", "2"], {
    cwd: work,
    stdio: ["ignore", "ignore", "inherit"],
    // Under npm, npm_config_nodedir (the machine's Node 20 headers) would win over --nodedir.
    env: { ...process.env, npm_config_nodedir: headers }
  })
  // A build against the wrong headers loads nowhere useful: check before caching it.
  execFileSync(node, ["-e", `require(${JSON.stringify(join(work, "build/Release/better_sqlite3.node"))})`])
  copyFileSync(join(work, "build/Release/better_sqlite3.node"), built)
  rmSync(work, { recursive: true, force: true })
  return built
}

/** Puts back the installed Node's build if a run left it aside. */
const restoreInstalledAddon = () => {
  if (existsSync(setAside)) renameSync(setAside, installedAddon)
}

/** Runs vitest's `single` project on `node`; `filters` (this script's arguments) narrow it to some files. */
const runSuite = (node: string, filters: ReadonlyArray<string>) =>
  new Promise<number>((resolve) => {
    const child = spawn(node, [join(repoRoot, "node_modules/vitest/vitest.mjs"), "run", "--project", "single", ...filters], {
      cwd: repoRoot,
      stdio: "inherit"
    })
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => child.kill(signal))
    child.on("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)))
  })

const main = async (): Promise<number> => {
  mkdirSync(cache, { recursive: true })
  restoreInstalledAddon()
  const node = node22()
  const { modules, node: version } = versionsOf(node)
  log(`running the suite on Node ${version} (${node})`)
  // better-sqlite3 is an optional dependency: where it did not install, its tests say so on either Node.
  const hasSqlite = existsSync(installedAddon)
  const addon = hasSqlite ? sqliteAddonFor(node, version, modules) : undefined
  try {
    if (addon !== undefined) {
      renameSync(installedAddon, setAside)
      copyFileSync(addon, installedAddon)
    }
    return await runSuite(node, process.argv.slice(2))
  } finally {
    restoreInstalledAddon()
  }
}

process.exitCode = await main()
