/**
 * The codebase's import rules, checked with dependency-cruiser against `.dependency-cruiser.cjs`
 * (where the rules and the layering are written down): no import cycles between files, no folder
 * importing one above it on the request path, `src/` not importing `plugins/`. And the hot-path
 * boundary: `src/relay/` imports nothing from `effect` at run time.
 */
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "./helpers/processes.js"

describe("import rules", () => {
  it("dependency-cruiser finds no violation of .dependency-cruiser.cjs in src/ and plugins/", () => {
    const bin = join(repoRoot, "node_modules/.bin/depcruise")
    let output = ""
    try {
      output = execFileSync(bin, ["src", "plugins", "--config", ".dependency-cruiser.cjs", "--output-type", "err"], {
        cwd: repoRoot,
        encoding: "utf8"
      })
    } catch (error) {
      // depcruise exits non-zero when it finds violations; they are on its stdout.
      output = String((error as { stdout?: unknown }).stdout ?? error)
    }
    const violations = output.split("\n").filter((line) => /^\s*(error|warn)\s/.test(line)).map((line) => line.trim())
    expect(violations).toEqual([])
    expect(output).toMatch(/cruised/)
  }, 60_000)

  it("src/relay/ (the hot path) imports no effect module at run time", () => {
    const dir = join(repoRoot, "src/relay")
    const files = readdirSync(dir).filter((name) => name.endsWith(".ts") && !name.endsWith(".test.ts"))
    expect(files.length).toBeGreaterThan(3)
    const runtimeEffect = /^import (?!type )[^;]*? from "(effect|@effect\/[^"]+)(\/[^"]*)?"/m
    const offenders = files.filter((name) => runtimeEffect.test(readFileSync(join(dir, name), "utf8")))
    expect(offenders).toEqual([])
  })
})
