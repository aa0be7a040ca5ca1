/**
 * The published package, as a new user meets it: `npm pack` of this repository (its build, as
 * `npm test` leaves it), installed from the tarball into an empty folder, `npx aperture init`,
 * `check`, `start`, and one tools/call through it with the MCP SDK; then `check` again on Node 22
 * (the npm registry's `node` package), the other Node the package supports.
 *
 * Needs the npm registry (dependencies, `npx -y` of server-everything and of Node 22; the cache
 * is preferred). Takes ~1–2 minutes, most of it `npm install`.
 */
import { execFile, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connectV2, eventually } from "./helpers/gateway.js"
import { freePort, repoRoot } from "./helpers/processes.js"

const run = promisify(execFile)

const NPM_QUIET = ["--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]

describe("the aperture-gateway package", () => {
  let work: string
  let app: string
  let packed: ReadonlyArray<string>
  // The gateway's transpile and compile caches, not the user's ~/.cache.
  let env: Record<string, string>

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "aperture-package-"))
    app = join(work, "my-gateway")
    env = { XDG_CACHE_HOME: join(work, "cache") }
    // `npm test` has built the repository; --ignore-scripts packs that build rather than
    // rebuilding the tree other tests run from (a publish runs prepack and prepare: a clean build).
    if (!existsSync(join(repoRoot, "dist/bundle/main.mjs"))) await run("npm", ["run", "build", "--silent"], { cwd: repoRoot })
    const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { cwd: repoRoot })
    const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
    packed = info!.files.map((f) => f.path)
    await run("mkdir", ["-p", app])
    await run("npm", ["init", "-y"], { cwd: app })
    await run("npm", ["install", join(work, info!.filename), ...NPM_QUIET], { cwd: app, timeout: 240_000 })
  }, 300_000)

  afterAll(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  })

  it("ships what runs: the bin, the build and its types; no sources, maps or test files", () => {
    for (const file of ["bin/aperture.js", "dist/bundle/main.mjs", "dist/bundle/index.mjs", "dist/src/index.js", "dist/src/index.d.ts", "dist/src/config/cacheDir.js", "package.json", "README.md", "LICENSE"]) {
      expect(packed).toContain(file)
    }
    expect(packed.filter((f) => f.startsWith("src/") || f.startsWith("test/") || f.endsWith(".map") || f.endsWith(".test.js"))).toEqual([])
    expect(JSON.parse(readFileSync(join(app, "node_modules/aperture-gateway/package.json"), "utf8"))).toMatchObject({
      name: "aperture-gateway",
      bin: { aperture: "bin/aperture.js" },
      engines: { node: ">=20" }
    })
  })

  it("init writes a starter that checks, type-checks, serves a tools/call, and refuses to overwrite", async () => {
    const init = await run("npx", ["aperture", "init"], { cwd: app, env: { ...process.env, ...env } })
    expect(init.stdout).toContain("wrote aperture.config.ts")
    // npm install made the package.json; init keeps it and says so.
    expect(init.stdout).toContain("kept package.json")
    expect(init.stdout).toContain("wrote tsconfig.json")
    expect(init.stdout).toContain("npx aperture start")
    expect(init.stdout).not.toContain("npm install")
    expect(readFileSync(join(app, "aperture.config.ts"), "utf8")).toContain('from "aperture-gateway"')

    const again = await run("npx", ["aperture", "init"], { cwd: app, env: { ...process.env, ...env } }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error
    )
    expect(again?.code).toBe(2)
    expect(again?.stderr).toContain("aperture.config.ts already exists")

    const check = await run("npx", ["aperture", "check"], { cwd: app, env: { ...process.env, ...env } })
    expect(check.stdout).toContain("everything")

    // The config type-checks against the installed package's declarations (as an editor would).
    await run(process.execPath, [join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", app], { cwd: app })

    const port = await freePort()
    // Its own process group, signalled as a whole as a terminal's Ctrl-C is: npx does not pass
    // a SIGTERM sent to it alone on to the gateway.
    const gateway = spawn("npx", ["aperture", "start", "--port", String(port)], { cwd: app, env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    gateway.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    gateway.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const exited = new Promise((resolve) => gateway.once("exit", resolve))
    try {
      const url = `http://127.0.0.1:${port}`
      // The first start fetches server-everything through npx -y.
      await eventually(async () => (await fetch(`${url}/healthz?ready`).catch(() => undefined))?.status === 200, 120_000, "the gateway ready").catch((error: Error) => Promise.reject(new Error(`${error.message}\n${output}`)))
      const client = await connectV2(`${url}/v1/mcp`)
      try {
        const result = await client.callTool({ name: "everything_echo", arguments: { message: "from a fresh install" } })
        expect(result.content).toEqual([{ type: "text", text: "Echo: from a fresh install" }])
      } finally {
        await client.close()
      }
    } finally {
      process.kill(-gateway.pid!, "SIGTERM")
      await exited
    }
    await eventually(() => fetch(`http://127.0.0.1:${port}/healthz`).then(() => false, () => true), 10_000, "the gateway to stop listening")
  }, 300_000)

  it("runs on Node 22 too", async () => {
    const node22 = ["-y", "-p", "node@22", "--", "node"]
    const { stdout: version } = await run("npx", [...node22, "-p", "process.version"], { cwd: app })
    expect(version.trim()).toMatch(/^v22\./)
    const check = await run("npx", [...node22, join(app, "node_modules/.bin/aperture"), "check"], { cwd: app, env: { ...process.env, ...env } })
    expect(check.stdout).toContain("everything")
  }, 240_000)
})
