/**
 * The gateway's counters and latency histograms, rendered as Prometheus text at `/metrics`.
 * A small registry of plain numbers rather than Effect `Metric`: the hot path records with a map
 * lookup and two additions, without running an effect. Gauges (sessions, connector status) are
 * read from their owners when scraped, so they cannot drift.
 * @module
 */
import * as Effect from "effect/Effect"

/** Latency buckets in seconds: 5 ms … 60 s (60 s is the default connector timeout). */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const

interface RequestSeries {
  readonly connector: string
  readonly method: string
  requests: number
  errors: number
  sum: number
  /** Non-cumulative counts per bucket; the last slot is +Inf. */
  readonly buckets: Array<number>
  /** The last {@link RECENT_MINUTES} minutes, a slot per minute reused as time moves on (see {@link recentMinute}). */
  readonly minuteOf: Array<number>
  readonly minuteRequests: Array<number>
  readonly minuteErrors: Array<number>
  readonly minuteSeconds: Array<number>
}

/** How many minutes of per-connector counts the status page can show. */
export const RECENT_MINUTES = 15

/** One minute of one connector's requests (every method), for the status page. */
export interface MinuteCounts {
  /** Start of the minute, epoch ms. */
  readonly minute: number
  readonly requests: number
  readonly errors: number
  /** Mean time to the upstream's answer, ms (0 without requests). */
  readonly meanMs: number
}

/** A gauge sample computed at scrape time. */
export interface GaugeSample {
  readonly labels?: Readonly<Record<string, string>>
  readonly value: number
}

export interface Gauge {
  readonly name: string
  readonly help: string
  readonly samples: ReadonlyArray<GaugeSample>
}

/** Ends a timed request; `failed` when the gateway could not complete it. */
export type FinishRequest = (failed: boolean) => void

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")

const labelText = (labels: Readonly<Record<string, string>> | undefined, extra?: string) => {
  const parts = Object.entries(labels ?? {}).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
  if (extra !== undefined) parts.push(extra)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

const header = (name: string, type: string, help: string) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`

export const makeRegistry = () => {
  const requests = new Map<string, RequestSeries>()
  const upstreamResponses = new Map<string, { readonly connector: string; readonly code: string; count: number }>()
  const tokenRefreshes = new Map<string, number>()

  const seriesOf = (connector: string, method: string): RequestSeries => {
    const key = `${connector}\u0000${method}`
    let series = requests.get(key)
    if (series === undefined) {
      series = {
        connector,
        method,
        requests: 0,
        errors: 0,
        sum: 0,
        buckets: new Array(LATENCY_BUCKETS.length + 1).fill(0),
        minuteOf: new Array(RECENT_MINUTES).fill(-1),
        minuteRequests: new Array(RECENT_MINUTES).fill(0),
        minuteErrors: new Array(RECENT_MINUTES).fill(0),
        minuteSeconds: new Array(RECENT_MINUTES).fill(0)
      }
      requests.set(key, series)
    }
    return series
  }

  /** Starts timing one request to a connector (an MCP method, or an HTTP method through the proxy). */
  const startRequest = (connector: string, method: string): FinishRequest => {
    const started = performance.now()
    return (failed) => {
      const seconds = (performance.now() - started) / 1000
      const series = seriesOf(connector, method)
      series.requests++
      if (failed) series.errors++
      series.sum += seconds
      let i = 0
      while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++
      series.buckets[i] = (series.buckets[i] as number) + 1
      // The per-minute ring: a slot found stale (an older minute) is reset, then counted into.
      const minute = Math.floor((performance.timeOrigin + performance.now()) / 60_000)
      const slot = minute % RECENT_MINUTES
      if (series.minuteOf[slot] !== minute) {
        series.minuteOf[slot] = minute
        series.minuteRequests[slot] = 0
        series.minuteErrors[slot] = 0
        series.minuteSeconds[slot] = 0
      }
      series.minuteRequests[slot] = (series.minuteRequests[slot] as number) + 1
      if (failed) series.minuteErrors[slot] = (series.minuteErrors[slot] as number) + 1
      series.minuteSeconds[slot] = (series.minuteSeconds[slot] as number) + seconds
    }
  }

  /**
   * One connector's last {@link RECENT_MINUTES} minutes, oldest first, the current one last
   * (minutes without requests included, as zeros). Read at request time, never on the call path.
   */
  const recentMinutes = (connector: string, now = Date.now()): ReadonlyArray<MinuteCounts> => {
    const current = Math.floor(now / 60_000)
    const out: Array<MinuteCounts> = []
    for (let minute = current - RECENT_MINUTES + 1; minute <= current; minute++) {
      const slot = minute % RECENT_MINUTES
      let count = 0
      let errors = 0
      let seconds = 0
      for (const series of requests.values()) {
        if (series.connector !== connector || series.minuteOf[slot] !== minute) continue
        count += series.minuteRequests[slot] as number
        errors += series.minuteErrors[slot] as number
        seconds += series.minuteSeconds[slot] as number
      }
      out.push({ minute: minute * 60_000, requests: count, errors, meanMs: count === 0 ? 0 : Math.round(seconds / count * 1e6) / 1e3 })
    }
    return out
  }

  /** Counts one upstream HTTP response by status code. */
  const upstreamResponse = (connector: string, status: number) => {
    const code = String(status)
    const key = `${connector}\u0000${code}`
    const entry = upstreamResponses.get(key)
    if (entry === undefined) upstreamResponses.set(key, { connector, code, count: 1 })
    else entry.count++
  }

  /** Counts one new credential value (a fetched or refreshed token) for a connector. */
  const tokenRefreshed = (connector: string) => {
    tokenRefreshes.set(connector, (tokenRefreshes.get(connector) ?? 0) + 1)
  }

  /** Prometheus text exposition format 0.0.4. */
  const render = (gauges: ReadonlyArray<Gauge> = []): string => {
    const all = [...requests.values()]
    let out = header("aperture_requests_total", "counter", "Requests sent to a connector, by connector and method (MCP method, or HTTP method through the proxy).")
    for (const s of all) out += `aperture_requests_total${labelText({ connector: s.connector, method: s.method })} ${s.requests}\n`
    out += header("aperture_request_errors_total", "counter", "Requests the gateway could not complete: upstream errors, unreachable or timed-out upstreams.")
    for (const s of all) out += `aperture_request_errors_total${labelText({ connector: s.connector, method: s.method })} ${s.errors}\n`
    out += header("aperture_request_duration_seconds", "histogram", "Time to the upstream's answer (for the HTTP proxy: to its response headers).")
    for (const s of all) {
      const labels = { connector: s.connector, method: s.method }
      let cumulative = 0
      LATENCY_BUCKETS.forEach((bound, i) => {
        cumulative += s.buckets[i] as number
        out += `aperture_request_duration_seconds_bucket${labelText(labels, `le="${bound}"`)} ${cumulative}\n`
      })
      cumulative += s.buckets[LATENCY_BUCKETS.length] as number
      out += `aperture_request_duration_seconds_bucket${labelText(labels, "le=\"+Inf\"")} ${cumulative}\n`
      out += `aperture_request_duration_seconds_sum${labelText(labels)} ${s.sum}\n`
      out += `aperture_request_duration_seconds_count${labelText(labels)} ${s.requests}\n`
    }
    out += header("aperture_upstream_responses_total", "counter", "Responses from HTTP connector upstreams, by status code.")
    for (const r of upstreamResponses.values()) {
      out += `aperture_upstream_responses_total${labelText({ connector: r.connector, code: r.code })} ${r.count}\n`
    }
    out += header("aperture_token_refreshes_total", "counter", "New credential values obtained after the first (token refreshes), by connector.")
    for (const [connector, count] of tokenRefreshes) out += `aperture_token_refreshes_total${labelText({ connector })} ${count}\n`
    for (const gauge of gauges) {
      out += header(gauge.name, "gauge", gauge.help)
      for (const sample of gauge.samples) out += `${gauge.name}${labelText(sample.labels)} ${sample.value}\n`
    }
    return out
  }

  return { startRequest, upstreamResponse, tokenRefreshed, recentMinutes, render } as const
}

/** One registry per gateway (several gateways in one process keep separate counts). */
export class Metrics extends Effect.Service<Metrics>()("aperture/Metrics", {
  sync: makeRegistry
}) {}
