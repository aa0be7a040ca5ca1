/**
 * `npm start` builds only when a build input changed. Run in a scratch package that has this
 * repository's `prestart` and script, and a `build` that counts its runs: the shared dist/ is
 * left alone.
 */
import { spawn } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { repoRoot } from "./helpers/processes.js"

const project = mkdtempSync(join(tmpdir(), "aperture-prestart-"))
afterAll(() => rmSync(project, { recursive: true, force: true }))

const repoScripts = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts

const write = (path: string, content: string) => {
  mkdirSync(join(project, path, ".."), { recursive: true })
  writeFileSync(join(project, path), content)
}

/** Marks a file as changed now, after the builds so far began. */
const touch = async (path: string) => {
  await new Promise((resolve) => setTimeout(resolve, 20))
  const now = new Date()
  utimesSync(join(project, path), now, now)
}

const builds = () => {
  try {
    return readFileSync(join(project, "builds.txt"), "utf8").length
  } catch {
    return 0
  }
}

const npm = (...args: Array<string>) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn("npm", [...args, "--silent"], { cwd: project, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.on("exit", (code) => resolve({ code, output }))
  })

describe("npm start", () => {
  it("builds a fresh checkout, then again only when a source, config or script changed", async () => {
    // The build writes dist/bundle/main.mjs last, as scripts/bundle.mjs does, and counts itself.
    const build = "node -e \"const fs=require('fs');fs.appendFileSync('builds.txt','x');"
      + "fs.mkdirSync('dist/bundle',{recursive:true});fs.writeFileSync('dist/bundle/main.mjs','')\""
    write("package.json", JSON.stringify({ name: "scratch", private: true, scripts: { build, prestart: repoScripts["prestart"], start: "node -e 0" } }))
    write("scripts/bundle.mjs", "")
    copyFileSync(join(repoRoot, "scripts/buildIfChanged.mjs"), join(project, "scripts/buildIfChanged.mjs"))
    write("src/a.ts", "export const a = 1\n")
    write("src/b.ts", "export const b = 1\n")
    write("src/a.test.ts", "test\n")
    write("tsconfig.json", "{}\n")

    const start = async () => {
      const started = await npm("start")
      expect(started.code, started.output).toBe(0)
    }
    await start()
    expect(builds()).toBe(1)
    await start()
    expect(builds()).toBe(1)

    await touch("src/a.ts")
    await start()
    expect(builds()).toBe(2)
    await touch("src/a.test.ts") // not a build input
    await start()
    expect(builds()).toBe(2)
    await touch("tsconfig.json")
    await start()
    expect(builds()).toBe(3)
    unlinkSync(join(project, "src/b.ts")) // seen in its directory's mtime
    await start()
    expect(builds()).toBe(4)

    // A build run otherwise (npm install's prepare, npm run build) counts too.
    await touch("src/a.ts")
    await npm("run", "build")
    expect(builds()).toBe(5)
    await start()
    expect(builds()).toBe(5)

    unlinkSync(join(project, "dist/bundle/main.mjs")) // a build that failed half-way
    await start()
    expect(builds()).toBe(6)
  }, 60_000)
})
