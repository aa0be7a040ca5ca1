/**
 * The official conformance suite's client-credentials scenarios, with the gateway as the client
 * under test (`clientAuth.adapter.ts`). The suite needs Node ≥ 22: `npx -p node@22` fetches it
 * from the npm registry; the suite itself is a pinned devDependency.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot, spawnProcess } from "../helpers/processes.js"

interface Check {
  readonly id: string
  readonly status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED"
  readonly description: string
}

const runScenario = async (scenario: string) => {
  const outputDir = mkdtempSync(join(tmpdir(), "aperture-conformance-"))
  const child = spawnProcess("npx", [
    "-y",
    "-p",
    "node@22",
    "--",
    "node",
    join(repoRoot, "node_modules/@modelcontextprotocol/conformance/dist/index.js"),
    "client",
    "--scenario",
    scenario,
    "--timeout",
    "120000",
    "-o",
    outputDir,
    "--command",
    `node --import tsx ${join(repoRoot, "test/conformance/clientAuth.adapter.ts")}`
  ])
  const code = await new Promise<number | null>((resolve) => child.child.on("exit", resolve))
  const file = readdirSync(outputDir, { recursive: true, encoding: "utf8" }).find((f) => f.endsWith("checks.json"))
  const checks: Array<Check> = file === undefined ? [] : JSON.parse(readFileSync(join(outputDir, file), "utf8"))
  rmSync(outputDir, { recursive: true, force: true })
  return { code, output: child.output(), checks }
}

describe("conformance: client credentials (gateway as the client)", () => {
  for (const [scenario, proof] of [
    ["auth/client-credentials-basic", "client-credentials-basic-auth"],
    ["auth/client-credentials-jwt", "client-credentials-jwt-verified"]
  ] as const) {
    it(scenario, async () => {
      const { checks, code, output } = await runScenario(scenario)
      const failures = checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING")
      expect(failures, output).toEqual([])
      expect(checks.find((c) => c.id === proof)?.status, output).toBe("SUCCESS")
      // The upstream tool was called through the gateway with the token.
      expect(checks.some((c) => c.id === "valid-bearer-token" && c.status === "SUCCESS"), output).toBe(true)
      expect(output).toContain("OVERALL: PASSED")
      expect(code, output).toBe(0)
    }, 240_000)
  }
})
