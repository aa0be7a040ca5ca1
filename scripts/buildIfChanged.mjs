/**
 * `npm start`'s prestart: runs `npm run build` only when an input of the build changed since the
 * last one (the build is ~8 s of a ~9 s start; an unchanged tree needs none of it).
 *
 * The last build is known by `dist/bundle/main.mjs`, the last file it writes (scripts/bundle.mjs
 * clears dist/bundle first, so a failed build leaves none). When that build was this script's,
 * `dist/.prestart-build.json` holds when it started, so a source saved during the build still
 * counts as newer; a build run otherwise (`npm install`'s prepare, `npm run build`) counts from
 * when it finished.
 *
 * Run from the package root (npm does).
 */
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const BUNDLE = "dist/bundle/main.mjs"
const STAMP = "dist/.prestart-build.json"
const INPUT_DIRS = ["src", "plugins", "bin", "scripts"]
const INPUT_FILES = ["package.json", "package-lock.json"]

/**
 * The newest mtime under `dir`, directories included (a deleted or renamed file changes only its
 * directory's); test files are not build inputs (tsconfig.build.json excludes them).
 */
const newestIn = (dir) => {
  let newest = statSync(dir).mtimeMs
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, newestIn(path))
    else if (!entry.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(path).mtimeMs)
  }
  return newest
}

const newestInput = () => {
  const files = [...INPUT_FILES, ...readdirSync(".").filter((name) => /^tsconfig.*\.json$/.test(name))]
  let newest = 0
  for (const dir of INPUT_DIRS) if (existsSync(dir)) newest = Math.max(newest, newestIn(dir))
  for (const file of files) if (existsSync(file)) newest = Math.max(newest, statSync(file).mtimeMs)
  return newest
}

/** When the last build's inputs were read, or `undefined` when there is no complete build. */
const lastBuild = () => {
  if (!existsSync(BUNDLE)) return undefined
  const bundleMtime = statSync(BUNDLE).mtimeMs
  try {
    const stamp = JSON.parse(readFileSync(STAMP, "utf8"))
    if (stamp.bundleMtime === bundleMtime) return stamp.startedAt
  } catch {
    // No stamp, or one from another build: that build counts from when it finished.
  }
  return bundleMtime
}

const built = lastBuild()
if (built === undefined || newestInput() > built) {
  const startedAt = Date.now()
  // npm sets npm_execpath for scripts it runs; from a shell, `npm` on the PATH.
  const npm = process.env.npm_execpath
  const result = npm
    ? spawnSync(process.execPath, [npm, "run", "build", "--silent"], { stdio: "inherit" })
    : spawnSync("npm", ["run", "build", "--silent"], { stdio: "inherit", shell: process.platform === "win32" })
  if (result.status !== 0) process.exit(result.status ?? 1)
  if (existsSync(BUNDLE)) writeFileSync(STAMP, JSON.stringify({ startedAt, bundleMtime: statSync(BUNDLE).mtimeMs }))
}
