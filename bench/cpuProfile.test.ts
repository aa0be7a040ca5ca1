import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { nowUs, summarizeProfile } from "./cpuProfile.js"

// A real profile of a real process: a "bundle" whose esbuild markers name the module a function
// came from, burning CPU in one function for ~300 ms.
const dir = mkdtempSync(join(tmpdir(), "aperture-cpuprofile-test-"))
const bundle = join(dir, "dist", "bundle", "chunk-test.mjs")
mkdirSync(join(dir, "dist", "bundle"), { recursive: true })
writeFileSync(
  bundle,
  [
    "// node_modules/some-package/index.js",
    "const unused = () => 1",
    "",
    "// dist/src/fake/burner.js",
    "export function burnCpu(ms) {",
    "  const end = Date.now() + ms",
    "  let x = 0",
    "  while (Date.now() < end) for (let i = 0; i < 100000; i++) x += Math.sqrt(x + i)",
    "  return x",
    "}",
    "burnCpu(300)",
    ""
  ].join("\n")
)
const started = nowUs()
execFileSync(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${join(dir, "out")}`, bundle])
const ended = nowUs()
const profile = join(dir, "out", readdirSync(join(dir, "out"))[0]!)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("summarizeProfile", () => {
  it("names a bundled function by the source module esbuild marked it with", () => {
    const summary = summarizeProfile(profile, { fromUs: started, toUs: ended })
    const [top, ms] = summary.functions[0]!
    expect(top).toBe("dist/src/fake/burner.js: burnCpu")
    expect(ms).toBeGreaterThan(150)
    expect(summary.categories[0]![0]).toBe("own code (gateway or relay)")
    expect(summary.busyMs).toBeGreaterThanOrEqual(ms)
  })

  it("counts only the samples inside the window", () => {
    expect(summarizeProfile(profile, { fromUs: started - 10_000_000, toUs: started }).busyMs).toBe(0)
    const whole = summarizeProfile(profile, { fromUs: started, toUs: ended }).busyMs
    const half = summarizeProfile(profile, { fromUs: started, toUs: started + (ended - started) / 2 }).busyMs
    expect(half).toBeLessThan(whole)
  })
})
