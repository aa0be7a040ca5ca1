/**
 * `npm run test:conformance`: the official MCP conformance suite's server scenarios, run
 * against our fixture directly and through Aperture (fixture behind it, `prefix: false`), for
 * the 2025-11-25 and 2026-07-28 requirement sets. Every check that passes direct must pass
 * through the gateway; both counts are printed and written to test/conformance/RESULTS.md.
 *
 * The suite needs Node ≥ 22; `npx -p node@22` fetches one from the npm registry.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, repoRoot, spawnProcess, type Spawned } from "../helpers/processes.js"

export const CONFORMANCE_PACKAGE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
const REVISIONS = ["2025-11-25", "2026-07-28"] as const

interface Check {
  readonly id: string
  readonly status: string
  readonly errorMessage?: string
}

const runSuite = (url: string, revision: string, outDir: string) =>
  new Promise<void>((resolve) => {
    execFile(
      "npx",
      ["-y", "-p", "node@22", "-p", CONFORMANCE_PACKAGE, "--", "conformance", "server", "--url", url, "--requirements", revision, "-o", outDir],
      { cwd: tmpdir(), maxBuffer: 64 * 1024 * 1024, timeout: 15 * 60_000 },
      // The suite exits non-zero when checks fail; the checks files are the verdict.
      () => resolve()
    )
  })

/** scenario → check id → status (a scenario may repeat a check id; all must pass). */
const readChecks = (dir: string): Map<string, Map<string, Check>> => {
  const byScenario = new Map<string, Map<string, Check>>()
  for (const entry of readdirSync(dir)) {
    const scenario = entry.replace(/^server-/, "").replace(/-\d{4}-\d{2}-\d{2}T.*$/, "")
    let checks: Array<Check>
    try {
      checks = JSON.parse(readFileSync(join(dir, entry, "checks.json"), "utf8")) as Array<Check>
    } catch {
      continue
    }
    const map = new Map<string, Check>()
    for (const check of checks) {
      const previous = map.get(check.id)
      if (previous === undefined || previous.status === "SUCCESS") map.set(check.id, check)
    }
    byScenario.set(scenario, map)
  }
  return byScenario
}

/**
 * Checks that cannot behave the same through a gateway, and why. Kept short and explained:
 * everything else that passes direct must pass through Aperture.
 */
export const EXPECTED_DIFFERENCES: Readonly<Record<string, string>> = {
  "server-sse-polling/server-sse-disconnect-resume":
    "the fixture ends its SSE stream mid-call only on a 2025-era session; Aperture reaches it over 2026-07-28, " +
    "where ending a stream cancels the call, so there is no upstream stream break to pass on (Aperture does pass one " +
    "on from 2025-era upstreams)"
}

/** Client scenarios run with Aperture's upstream client as the client under test, and the revision each belongs to. */
export const CLIENT_SCENARIOS: ReadonlyArray<readonly [string, string]> = [
  ["initialize", "2025-11-25"],
  ["tools_call", "2025-11-25"],
  ["sse-retry", "2025-11-25"],
  ["elicitation-sep1034-client-defaults", "2025-11-25"],
  ["request-metadata", "2026-07-28"]
]

export interface ClientOutcome {
  readonly scenario: string
  readonly passed: number
  readonly failed: ReadonlyArray<string>
}

/** Runs the client scenarios against the pass-through client adapter. */
export const runClientScenarios = async (): Promise<ReadonlyArray<ClientOutcome>> => {
  const outcomes: Array<ClientOutcome> = []
  for (const [scenario, revision] of CLIENT_SCENARIOS) {
    const outDir = mkdtempSync(join(tmpdir(), `conformance-client-${scenario}-`))
    await new Promise<void>((resolve) => {
      execFile(
        "npx",
        [
          "-y", "-p", "node@22", "-p", CONFORMANCE_PACKAGE, "--", "conformance", "client",
          "--command", `${process.execPath} --import tsx ${join(repoRoot, "test/conformance/passThroughClient.ts")}`,
          "--scenario", scenario, "--spec-version", revision, "-o", outDir
        ],
        { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024, timeout: 5 * 60_000 },
        () => resolve()
      )
    })
    const read = readChecks(outDir)
    rmSync(outDir, { recursive: true, force: true })
    const checks = [...read.values()].flatMap((m) => [...m.values()])
      .filter((c) => c.status !== "INFO")
    outcomes.push({
      scenario,
      passed: checks.filter((c) => c.status === "SUCCESS").length,
      failed: checks.filter((c) => c.status !== "SUCCESS").map((c) => `${c.id}: ${c.status} ${c.errorMessage ?? ""}`.trim())
    })
  }
  return outcomes
}

export interface RevisionOutcome {
  readonly revision: string
  readonly directPassed: number
  readonly gatewayPassed: number
  /** Checks that pass direct but not through the gateway: each is a gateway bug. */
  readonly regressions: ReadonlyArray<string>
}

export const runConformance = async (): Promise<ReadonlyArray<RevisionOutcome>> => {
  const started: Array<Spawned> = []
  try {
    const fixturePort = await freePort()
    const fixture = spawnProcess(process.execPath, ["--import", "tsx", "test/conformance/fixtureServer.ts", String(fixturePort)])
    started.push(fixture)
    const fixtureUrl = (await fixture.waitFor(/http:\/\/\S+\/mcp/)).trim()

    const gatewayPort = await freePort()
    const gateway = spawnProcess(
      process.execPath,
      ["bin/aperture.js", "start", "--config", "test/conformance/gateway.config.ts", "--port", String(gatewayPort)],
      { CONFORMANCE_UPSTREAM_URL: fixtureUrl }
    )
    started.push(gateway)
    await gateway.waitFor(/connector conformance ready/)
    const gatewayUrl = `http://localhost:${gatewayPort}/v1/mcp`

    const outcomes: Array<RevisionOutcome> = []
    for (const revision of REVISIONS) {
      const directDir = mkdtempSync(join(tmpdir(), `conformance-direct-${revision}-`))
      const gatewayDir = mkdtempSync(join(tmpdir(), `conformance-gateway-${revision}-`))
      await runSuite(fixtureUrl, revision, directDir)
      await runSuite(gatewayUrl, revision, gatewayDir)
      const direct = readChecks(directDir)
      const viaGateway = readChecks(gatewayDir)
      for (const dir of [directDir, gatewayDir]) rmSync(dir, { recursive: true, force: true })
      let directPassed = 0
      let gatewayPassed = 0
      const regressions: Array<string> = []
      for (const [scenario, checks] of direct) {
        for (const [id, check] of checks) {
          if (check.status !== "SUCCESS") continue
          directPassed++
          const through = viaGateway.get(scenario)?.get(id)
          if (through?.status === "SUCCESS") gatewayPassed++
          else if (`${scenario}/${id}` in EXPECTED_DIFFERENCES) continue
          else regressions.push(`${scenario} / ${id}: ${through ? `${through.status} ${through.errorMessage ?? ""}`.trim() : "not run"}`)
        }
      }
      outcomes.push({ revision, directPassed, gatewayPassed, regressions })
    }
    return outcomes
  } finally {
    for (const child of started) await child.kill()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const outcomes = await runConformance()
  const lines = ["# Conformance: direct vs through Aperture", "", `Suite ${CONFORMANCE_PACKAGE}, server scenarios, \`--requirements <revision>\`.`, ""]
  for (const o of outcomes) {
    lines.push(`- ${o.revision}: ${o.directPassed} checks pass direct, ${o.gatewayPassed} of them through the gateway`)
    for (const r of o.regressions) lines.push(`  - regression: ${r}`)
  }
  lines.push("", "Expected differences:", ...Object.entries(EXPECTED_DIFFERENCES).map(([check, why]) => `- ${check}: ${why}`))
  const clients = await runClientScenarios()
  lines.push("", "Client scenarios (Aperture's upstream client under test, driven through the gateway):")
  for (const c of clients) {
    lines.push(`- ${c.scenario}: ${c.passed} passed${c.failed.length > 0 ? `, failed: ${c.failed.join("; ")}` : ""}`)
  }
  const report = lines.join("\n") + "\n"
  process.stdout.write(report)
  writeFileSync(join(repoRoot, "test/conformance/RESULTS.md"), report)
  if (outcomes.some((o) => o.regressions.length > 0 || o.directPassed === 0)) process.exitCode = 1
  if (clients.some((c) => c.failed.length > 0 || c.passed === 0)) process.exitCode = 1
}
