/**
 * `npm run bench [-- --quick]`: `tools/call` of an echo tool through the gateway vs the same
 * upstream directly, in one run, alternating, at concurrency 1 and 16. Prints req/s, p50, p99
 * and the gateway/direct ratios, and writes bench/RESULTS.md.
 */
import { execSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { freePort, repoRoot, spawnProcess, type Spawned } from "../test/helpers/processes.js"
import { closedLoop, type LoadResult, percentile } from "./loadgen.js"

const quick = process.argv.includes("--quick")
const rounds = quick ? 1 : 3
const seconds = quick ? 3 : 8
const concurrencies = [1, 16]

const hasTaskset = (() => {
  try {
    execSync("taskset -c 0 true", { stdio: "ignore" })
    return cpus().length >= 2
  } catch {
    return false
  }
})()
/** Upstream on CPU 0, gateway on CPU 1 (when taskset is there), so they don't share a core. */
const pinned = (cpu: number, command: string, args: ReadonlyArray<string>) =>
  hasTaskset ? (["taskset", ["-c", String(cpu), command, ...args]] as const) : ([command, args] as const)

const started: Array<Spawned> = []
const launch = (cpu: number, command: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const [cmd, argv] = pinned(cpu, command, args)
  const child = spawnProcess(cmd, argv, env)
  started.push(child)
  return child
}

interface Row {
  readonly target: "direct" | "gateway"
  readonly concurrency: number
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
}

const summarize = (target: Row["target"], concurrency: number, results: ReadonlyArray<LoadResult>): Row => {
  const median = (xs: Array<number>) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  return {
    target,
    concurrency,
    rps: median(results.map((r) => r.requests / r.seconds)),
    p50: median(results.map((r) => percentile(r.latenciesMs, 50))),
    p99: median(results.map((r) => percentile(r.latenciesMs, 99))),
    errors: results.reduce((n, r) => n + r.errors, 0)
  }
}

const main = async () => {
  const upstreamPort = await freePort()
  const upstream = launch(0, process.execPath, ["--import", "tsx", "bench/echoUpstream.ts", String(upstreamPort)])
  const directUrl = (await upstream.waitFor(/http:\/\/\S+\/mcp/)).trim()

  const gatewayPort = await freePort()
  const gateway = launch(
    1,
    process.execPath,
    ["bin/aperture.js", "start", "--config", "bench/bench.config.ts", "--port", String(gatewayPort)],
    { BENCH_UPSTREAM_URL: directUrl }
  )
  await gateway.waitFor(/connector bench ready/)
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}/v1/mcp`

  const rows: Array<Row> = []
  for (const concurrency of concurrencies) {
    const direct: Array<LoadResult> = []
    const viaGateway: Array<LoadResult> = []
    // Warm both paths, then alternate so drift hits both alike.
    await closedLoop({ url: directUrl, tool: "echo", message: "warm", concurrency, seconds: 1 })
    await closedLoop({ url: gatewayUrl, tool: "bench_echo", message: "warm", concurrency, seconds: 1 })
    for (let round = 0; round < rounds; round++) {
      direct.push(await closedLoop({ url: directUrl, tool: "echo", message: "x".repeat(100), concurrency, seconds }))
      viaGateway.push(await closedLoop({ url: gatewayUrl, tool: "bench_echo", message: "x".repeat(100), concurrency, seconds }))
    }
    rows.push(summarize("direct", concurrency, direct), summarize("gateway", concurrency, viaGateway))
  }

  const lines = [
    "| concurrency | target | req/s | p50 ms | p99 ms | errors |",
    "|---:|---|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.concurrency} | ${r.target} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} |`)
  ]
  const ratios = concurrencies.map((c) => {
    const d = rows.find((r) => r.target === "direct" && r.concurrency === c)!
    const g = rows.find((r) => r.target === "gateway" && r.concurrency === c)!
    return `- c=${c}: throughput gateway/direct **${(g.rps / d.rps).toFixed(2)}×**, added p50 ${(g.p50 - d.p50).toFixed(2)} ms, added p99 ${(g.p99 - d.p99).toFixed(2)} ms`
  })
  const commit = (() => {
    try {
      return execSync("git rev-parse --short HEAD", { cwd: repoRoot }).toString().trim()
    } catch {
      return "unknown"
    }
  })()
  const report = [
    "# Benchmark results",
    "",
    `${new Date().toISOString()} · commit ${commit} · Node ${process.version} · ${cpus().length}× ${cpus()[0]?.model ?? "cpu"}`,
    `${rounds} alternating round(s) of ${seconds} s per target; medians. Upstream: v2 SDK echo server` +
    `${hasTaskset ? " on CPU 0, gateway on CPU 1 (taskset)" : " (no CPU pinning available)"}; load generator unpinned.`,
    "",
    "S1 `tools/call` echo (~100 B), closed loop:",
    "",
    ...lines,
    "",
    ...ratios,
    ""
  ].join("\n")
  process.stdout.write(`\n${report}\n`)
  if (!quick) writeFileSync(`${repoRoot}bench/RESULTS.md`, report)
}

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(async () => {
    for (const child of started) await child.kill()
  })
