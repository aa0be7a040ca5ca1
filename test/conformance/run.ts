/**
 * `npm run test:conformance`: the official MCP conformance suite's server scenarios, run
 * against our fixtures directly and through Aperture (the fixture behind it, `prefix: false`),
 * for the 2025-11-25 and 2026-07-28 requirement sets. Two upstreams:
 * - the v2-SDK fixture (fixtureServer.ts, both eras): every check that passes direct must pass
 *   through the gateway, in both revisions;
 * - the v1-SDK fixture (fixtureServerV1.ts, 2025-11-25 only, as most servers in the wild): every
 *   2025-11-25 check that passes direct must pass through the gateway; 2026-07-28 it cannot speak,
 *   so through the gateway (2026-07-28 to the caller, 2025-11-25 upstream) every check that passes
 *   in front of the v2 fixture must pass in front of it too.
 * Listed exceptions carry their reasons. The counts are printed and written to
 * test/conformance/RESULTS.md.
 *
 * The suite needs Node ≥ 22; `npx -p node@22` fetches one from the npm registry.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, repoRoot, spawnProcess, type Spawned } from "../helpers/processes.js"

export const CONFORMANCE_PACKAGE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
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
 * Checks that cannot behave the same through a gateway, and why, as `<scenario>/<check id>`.
 * Kept short and explained: everything else that passes direct must pass through Aperture.
 */
export const EXPECTED_DIFFERENCES: Readonly<Record<string, string>> = {
  "server-sse-polling/server-sse-disconnect-resume":
    "the fixture ends its SSE stream mid-call only on a 2025-era session; Aperture reaches it over 2026-07-28, " +
    "where ending a stream cancels the call, so there is no upstream stream break to pass on"
}

/** The same for the v1-SDK fixture, which speaks 2025-11-25 only. */
export const EXPECTED_DIFFERENCES_V1: Readonly<Record<string, string>> = {
  "server-sse-polling/server-sse-disconnect-resume":
    "Aperture resumes the upstream's broken stream itself (Last-Event-ID, src/relay/upstreamCall.ts) and answers " +
    "on the caller's stream, which it keeps open: the suite reports INFO 'server did not disconnect mid-call'"
}

/**
 * 2026-07-28 checks that pass through the gateway in front of the v2 fixture but cannot in
 * front of a 2025-era upstream, and why.
 */
export const EXPECTED_DIFFERENCES_V1_2026: Readonly<Record<string, string>> = {
  "input-required-result-basic-elicitation/sep-2322-elicitation-incomplete":
    "a 2025-era upstream asks with real requests, which carry no input-request key, so Aperture names them " +
    "(upstream_1, …); the scenario expects the key the v2 fixture chose (user_name)",
  "input-required-result-basic-elicitation/sep-2322-elicitation-complete":
    "not run: the scenario stops when the check before it (the key name) fails",
  "input-required-result-ignore-extra-params/sep-2322-ignore-unexpected-params":
    "the scenario answers up front, unasked, under the key user_name; a 2025-era upstream's questions carry no key, " +
    "so Aperture cannot match that answer to one and the call asks again"
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

type Checks = Map<string, Map<string, Check>>

/** A suite run: one URL, one requirement set. */
interface SuiteRun {
  readonly url: string
  readonly revision: string
}

/** Runs the suite runs `parallel` at a time (each is a Node process; the machine has 2 cores). */
const runSuites = async (runs: ReadonlyArray<SuiteRun>, parallel = 2): Promise<ReadonlyArray<Checks>> => {
  const results: Array<Checks> = new Array(runs.length)
  let next = 0
  const worker = async () => {
    while (next < runs.length) {
      const index = next++
      const { revision, url } = runs[index]!
      const outDir = mkdtempSync(join(tmpdir(), `conformance-${revision}-`))
      try {
        await runSuite(url, revision, outDir)
        results[index] = readChecks(outDir)
      } finally {
        rmSync(outDir, { recursive: true, force: true })
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return results
}

const statusOf = (checks: Checks, key: string) => {
  const slash = key.indexOf("/")
  return checks.get(key.slice(0, slash))?.get(key.slice(slash + 1))
}

const passing = (checks: Checks): Array<string> =>
  [...checks].flatMap(([scenario, byId]) => [...byId].filter(([, c]) => c.status === "SUCCESS").map(([id]) => `${scenario}/${id}`))

/**
 * Every check in `checks` that did not pass (INFO aside), by scenario: `<id> (STATUS)`, and
 * whether it passes in the baseline.
 */
const failing = (checks: Checks, baseline: Checks): Array<string> =>
  [...checks].sort(([a], [b]) => a.localeCompare(b)).flatMap(([scenario, byId]) => {
    const bad = [...byId].filter(([, c]) => c.status !== "SUCCESS" && c.status !== "INFO")
    const described = bad.map(([id, c]) =>
      `${id} (${c.status}${baseline.get(scenario)?.get(id)?.status === "SUCCESS" ? "; passes in the baseline" : ""})`
    )
    return bad.length === 0 ? [] : [`${scenario}: ${described.join(", ")}`]
  })

export interface Comparison {
  /** What ran, e.g. `2025-11-25` or `2026-07-28 through the gateway`. */
  readonly revision: string
  /** Checks passing in the baseline (direct, or through the gateway in front of the v2 fixture). */
  readonly baselinePassed: number
  /** Of those, passing in the run compared. */
  readonly passed: number
  /** All checks passing in the run compared. */
  readonly totalPassed: number
  /** Baseline passes that fail in the run compared and are not listed as expected: each is a gateway bug. */
  readonly regressions: ReadonlyArray<string>
  /** Checks not passing in the run compared, by scenario (reported for runs with no direct baseline). */
  readonly failing: ReadonlyArray<string>
}

const compare = (
  revision: string,
  baseline: Checks,
  compared: Checks,
  expected: Readonly<Record<string, string>>
): Comparison => {
  const base = passing(baseline)
  const regressions: Array<string> = []
  let passed = 0
  for (const key of base) {
    const through = statusOf(compared, key)
    if (through?.status === "SUCCESS") passed++
    else if (!(key in expected)) {
      regressions.push(`${key.replace("/", " / ")}: ${through ? `${through.status} ${through.errorMessage ?? ""}`.trim() : "not run"}`)
    }
  }
  return { revision, baselinePassed: base.length, passed, totalPassed: passing(compared).length, regressions, failing: failing(compared, baseline) }
}

export interface UpstreamOutcome {
  readonly upstream: "v2" | "v1"
  readonly comparisons: ReadonlyArray<Comparison>
}

const startFixture = async (file: string) => {
  const fixture = spawnProcess(process.execPath, ["--import", "tsx", file, String(await freePort())])
  return { fixture, url: (await fixture.waitFor(/http:\/\/\S+\/mcp/)).trim() }
}

const startGateway = async (upstreamUrl: string) => {
  const port = await freePort()
  const gateway = spawnProcess(
    process.execPath,
    ["bin/aperture.js", "start", "--config", "test/conformance/gateway.config.ts", "--port", String(port)],
    { CONFORMANCE_UPSTREAM_URL: upstreamUrl }
  )
  return { gateway, url: `http://localhost:${port}/v1/mcp`, ready: gateway.waitFor(/connector conformance ready/) }
}

export const runConformance = async (): Promise<ReadonlyArray<UpstreamOutcome>> => {
  const started: Array<Spawned> = []
  try {
    const [v2, v1] = await Promise.all([startFixture("test/conformance/fixtureServer.ts"), startFixture("test/conformance/fixtureServerV1.ts")])
    started.push(v2.fixture, v1.fixture)
    // A gateway per upstream: the config exposes its one connector's names unprefixed.
    const [v2Gateway, v1Gateway] = [await startGateway(v2.url), await startGateway(v1.url)]
    started.push(v2Gateway.gateway, v1Gateway.gateway)
    await Promise.all([v2Gateway.ready, v1Gateway.ready])

    // The longest runs (2026-07-28 through a gateway) first, so the two lanes end together.
    const [v2Gateway2026, v1Gateway2026, v2Direct2026, v2Direct2025, v2Gateway2025, v1Direct2025, v1Gateway2025] = await runSuites([
      { url: v2Gateway.url, revision: "2026-07-28" },
      { url: v1Gateway.url, revision: "2026-07-28" },
      { url: v2.url, revision: "2026-07-28" },
      { url: v2.url, revision: "2025-11-25" },
      { url: v2Gateway.url, revision: "2025-11-25" },
      { url: v1.url, revision: "2025-11-25" },
      { url: v1Gateway.url, revision: "2025-11-25" }
    ])
    return [
      {
        upstream: "v2",
        comparisons: [
          compare("2025-11-25", v2Direct2025!, v2Gateway2025!, EXPECTED_DIFFERENCES),
          compare("2026-07-28", v2Direct2026!, v2Gateway2026!, EXPECTED_DIFFERENCES)
        ]
      },
      {
        upstream: "v1",
        comparisons: [
          compare("2025-11-25", v1Direct2025!, v1Gateway2025!, EXPECTED_DIFFERENCES_V1),
          compare("2026-07-28 through the gateway", v2Gateway2026!, v1Gateway2026!, EXPECTED_DIFFERENCES_V1_2026)
        ]
      }
    ]
  } finally {
    for (const child of started) await child.kill()
  }
}

const UPSTREAMS = {
  v2: "the v2-SDK fixture (fixtureServer.ts; both eras, 2025-era traffic in sessions)",
  v1: "the v1-SDK fixture (fixtureServerV1.ts; 2025-11-25 only, Express, a stateful session per client with an event store)"
} as const

if (import.meta.url === `file://${process.argv[1]}`) {
  const outcomes = await runConformance()
  const lines = ["# Conformance: direct vs through Aperture", "", `Suite ${CONFORMANCE_PACKAGE}, server scenarios, \`--requirements <revision>\`.`]
  for (const { comparisons, upstream } of outcomes) {
    lines.push("", `Upstream: ${UPSTREAMS[upstream]}`, "")
    for (const c of comparisons) {
      if (c.revision.startsWith("2026-07-28 through")) {
        // No direct baseline: the upstream cannot speak 2026-07-28.
        lines.push(
          `- ${c.revision} (2025-11-25 upstream; no direct baseline): ${c.totalPassed} checks pass; ` +
            `of the ${c.baselinePassed} that pass in front of the v2 fixture, ${c.passed} pass here`
        )
        for (const r of c.regressions) lines.push(`  - regression: ${r}`)
        lines.push("  - not passing (\"passes in the baseline\": passes in front of the v2 fixture; the rest fail there too):")
        for (const f of c.failing) lines.push(`    - ${f}`)
      } else {
        lines.push(`- ${c.revision}: ${c.baselinePassed} checks pass direct, ${c.passed} of them through the gateway`)
        for (const r of c.regressions) lines.push(`  - regression: ${r}`)
      }
    }
  }
  lines.push("", "Expected differences, v2-SDK fixture:", ...Object.entries(EXPECTED_DIFFERENCES).map(([check, why]) => `- ${check}: ${why}`))
  lines.push("", "Expected differences, v1-SDK fixture, 2025-11-25:", ...Object.entries(EXPECTED_DIFFERENCES_V1).map(([check, why]) => `- ${check}: ${why}`))
  lines.push(
    "",
    "Expected differences, v1-SDK fixture, 2026-07-28 (vs the v2 fixture through the gateway):",
    ...Object.entries(EXPECTED_DIFFERENCES_V1_2026).map(([check, why]) => `- ${check}: ${why}`)
  )
  const clients = await runClientScenarios()
  lines.push("", "Client scenarios (Aperture's upstream client under test, driven through the gateway):")
  for (const c of clients) {
    lines.push(`- ${c.scenario}: ${c.passed} passed${c.failed.length > 0 ? `, failed: ${c.failed.join("; ")}` : ""}`)
  }
  const report = lines.join("\n") + "\n"
  process.stdout.write(report)
  writeFileSync(join(repoRoot, "test/conformance/RESULTS.md"), report)
  const comparisons = outcomes.flatMap((o) => o.comparisons)
  if (comparisons.some((c) => c.regressions.length > 0 || c.baselinePassed === 0 || c.totalPassed === 0)) process.exitCode = 1
  if (clients.some((c) => c.failed.length > 0 || c.passed === 0)) process.exitCode = 1
}
