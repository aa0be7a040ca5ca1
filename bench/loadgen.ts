/**
 * Load generation speaking MCP's 2025-era streamable HTTP directly over undici (pre-built
 * bodies, keep-alive connections), so the client costs little next to what it measures.
 * Closed loop for throughput, open loop (fixed rate, latency from the scheduled send time, so
 * a slow response cannot hide queued ones) for latency deltas.
 */
import { Agent, request } from "undici"

export interface LoadResult {
  readonly requests: number
  readonly errors: number
  readonly seconds: number
  /** Sorted ascending. */
  readonly latenciesMs: Float64Array
}

const BASE_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25"
}

export const percentile = (sorted: Float64Array, p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/**
 * Opens an MCP session (if the server keeps sessions) and returns the headers every call needs;
 * `extra` headers (a caller's login, S8) go on every request of the session.
 */
export const openSession = async (url: string, dispatcher: Agent, extra?: Record<string, string>): Promise<Record<string, string>> => {
  const initHeaders = extra === undefined ? BASE_HEADERS : { ...BASE_HEADERS, ...extra }
  const init = await request(url, {
    method: "POST",
    dispatcher,
    headers: initHeaders,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bench", version: "1" } }
    })
  })
  await init.body.text()
  if (init.statusCode !== 200) throw new Error(`initialize failed: HTTP ${init.statusCode}`)
  const session = init.headers["mcp-session-id"]
  const headers: Record<string, string> = { ...initHeaders, ...(typeof session === "string" && { "mcp-session-id": session }) }
  const initialized = await request(url, {
    method: "POST",
    dispatcher,
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })
  })
  await initialized.body.text()
  return headers
}

/** Ends a session as a well-behaved client does (DELETE), so runs do not pile sessions up on the gateway. */
export const closeSessions = async (url: string, dispatcher: Agent, sessions: ReadonlyArray<Record<string, string>>) => {
  await Promise.all(sessions.map(async (headers) => {
    if (headers["mcp-session-id"] === undefined) return
    const closed = await request(url, { method: "DELETE", dispatcher, headers })
    await closed.body.text()
  }))
}

export interface CallOptions {
  readonly url: string
  readonly tool: string
  readonly message: string
  /** Ask for progress notifications (the `progress` tool streams ten). */
  readonly progress?: boolean
  /** Told when the timed window starts and ends (sessions are opened before it, closed after). */
  readonly window?: LoadWindow
}

export interface LoadWindow {
  readonly start: () => void
  readonly end: () => void
}

const callBody = (options: CallOptions) => {
  const prefix = `{"jsonrpc":"2.0","id":`
  const suffix = `,"method":"tools/call","params":{"name":${JSON.stringify(options.tool)},"arguments":{"message":${
    JSON.stringify(options.message)
  }}${options.progress ? `,"_meta":{"progressToken":"p"}` : ""}}}`
  return (id: number) => prefix + id + suffix
}

const call = async (url: string, dispatcher: Agent, headers: Record<string, string>, body: string): Promise<boolean> => {
  const response = await request(url, { method: "POST", dispatcher, headers, body })
  const text = await response.body.text()
  return response.statusCode === 200 && text.includes("\"result\"")
}

/**
 * `workers` loops, each running `attempt` back to back for `seconds` (an attempt answers whether it
 * succeeded; one that throws is an error too), timed inside `window` when given: the closed loop
 * every closed-loop scenario runs.
 */
export const timedWorkers = async (
  workers: number,
  seconds: number,
  attempt: (worker: number) => Promise<boolean>,
  window?: CallOptions["window"]
): Promise<LoadResult> => {
  const latencies: Array<number> = []
  let errors = 0
  const deadline = performance.now() + seconds * 1000
  const worker = async (index: number) => {
    while (performance.now() < deadline) {
      const started = performance.now()
      try {
        if (await attempt(index)) latencies.push(performance.now() - started)
        else errors++
      } catch {
        errors++
      }
    }
  }
  window?.start()
  const started = performance.now()
  await Promise.all(Array.from({ length: workers }, (_, index) => worker(index)))
  const elapsed = (performance.now() - started) / 1000
  window?.end()
  return { requests: latencies.length, errors, seconds: elapsed, latenciesMs: Float64Array.from(latencies).sort() }
}

/** `concurrency` workers, each in its own session, call back to back for `seconds`. */
export const closedLoop = async (options: CallOptions & { readonly concurrency: number; readonly seconds: number }): Promise<LoadResult> => {
  const dispatcher = new Agent({ connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 })
  const sessions = await Promise.all(Array.from({ length: options.concurrency }, () => openSession(options.url, dispatcher)))
  const body = callBody(options)
  let id = 1
  const result = await timedWorkers(
    options.concurrency,
    options.seconds,
    (worker) => call(options.url, dispatcher, sessions[worker]!, body(id++)),
    options.window
  )
  await closeSessions(options.url, dispatcher, sessions)
  await dispatcher.close()
  return result
}

/**
 * `concurrency` workers GET `url` back to back for `seconds`, reading each body whole (S6, the HTTP
 * proxy); an answer that is not 200 with `expectedBytes` of body counts as an error.
 */
export const httpClosedLoop = async (
  options: { readonly url: string; readonly concurrency: number; readonly seconds: number; readonly expectedBytes: number }
): Promise<LoadResult> => {
  const dispatcher = new Agent({ connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 })
  const result = await timedWorkers(options.concurrency, options.seconds, async () => {
    const response = await request(options.url, { method: "GET", dispatcher })
    const body = await response.body.arrayBuffer()
    return response.statusCode === 200 && body.byteLength === options.expectedBytes
  })
  await dispatcher.close()
  return result
}

/**
 * Calls at a fixed `rate` per second for `seconds`, whatever the answers' pace; each latency
 * counts from when the call was due, so queueing shows.
 */
export const openLoop = async (options: CallOptions & { readonly rate: number; readonly seconds: number }): Promise<LoadResult> => {
  const sessionsCount = 32
  const dispatcher = new Agent({ connections: sessionsCount, pipelining: 1, keepAliveTimeout: 30_000 })
  const sessions = await Promise.all(Array.from({ length: sessionsCount }, () => openSession(options.url, dispatcher)))
  const body = callBody(options)
  const latencies: Array<number> = []
  let errors = 0
  const total = Math.round(options.rate * options.seconds)
  const interval = 1000 / options.rate
  options.window?.start()
  const started = performance.now()
  const pending: Array<Promise<void>> = []
  for (let i = 0; i < total; i++) {
    const due = started + i * interval
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    // Latency from the scheduled time when the generator is late (a slow response cannot hide
    // the ones queued behind it), from the send when it is early (a wait under 1 ms is not slept).
    const from = Math.min(due, performance.now())
    pending.push(
      call(options.url, dispatcher, sessions[i % sessionsCount]!, body(i + 1)).then(
        (ok) => {
          if (ok) latencies.push(performance.now() - from)
          else errors++
        },
        () => void errors++
      )
    )
  }
  await Promise.all(pending)
  const seconds = (performance.now() - started) / 1000
  options.window?.end()
  await closeSessions(options.url, dispatcher, sessions)
  await dispatcher.close()
  return { requests: latencies.length, errors, seconds, latenciesMs: Float64Array.from(latencies).sort() }
}

/** `tools/list` in one session: the first page's latency, or every page of the list (following `nextCursor`). */
export const listTools = async (url: string, dispatcher: Agent, headers: Record<string, string>, walk: boolean) => {
  let cursor: string | undefined
  let pages = 0
  let tools = 0
  let id = 1_000_000
  // Time to each page's last byte: the client's parse of a 200 KB page (and the GC it brings on
  // in this process, which shares a core with the upstreams) is the client's, not the gateway's.
  let ms = 0
  do {
    const body = JSON.stringify({ jsonrpc: "2.0", id: id++, method: "tools/list", params: cursor === undefined ? {} : { cursor } })
    const started = performance.now()
    const response = await request(url, { method: "POST", dispatcher, headers, body })
    const text = await response.body.text()
    ms += performance.now() - started
    const json = text.startsWith("{") ? text : text.split("\n").find((l) => l.startsWith("data: {"))?.slice(6) ?? "{}"
    const result = (JSON.parse(json) as { result?: { tools?: Array<unknown>; nextCursor?: string } }).result
    pages++
    tools += result?.tools?.length ?? 0
    cursor = walk ? result?.nextCursor : undefined
  } while (cursor !== undefined)
  return { ms, pages, tools }
}

/** Session churn: initialize → initialized → tools/list → DELETE, `concurrency` at a time, for `seconds`. */
export const sessionChurn = async (url: string, concurrency: number, seconds: number): Promise<LoadResult> => {
  const dispatcher = new Agent({ connections: concurrency, pipelining: 1, keepAliveTimeout: 30_000 })
  const latencies: Array<number> = []
  let errors = 0
  const deadline = performance.now() + seconds * 1000
  const worker = async () => {
    while (performance.now() < deadline) {
      const started = performance.now()
      try {
        const headers = await openSession(url, dispatcher)
        await listTools(url, dispatcher, headers, false)
        await closeSessions(url, dispatcher, [headers])
        latencies.push(performance.now() - started)
      } catch {
        errors++
      }
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = (performance.now() - started) / 1000
  await dispatcher.close()
  return { requests: latencies.length, errors, seconds: elapsed, latenciesMs: Float64Array.from(latencies).sort() }
}

/** Opens `count` sessions and leaves them idle (they close when the gateway reaps them). */
export const openIdleSessions = async (url: string, count: number) => {
  const dispatcher = new Agent({ connections: 16, pipelining: 1 })
  for (let i = 0; i < count; i += 16) {
    await Promise.all(Array.from({ length: Math.min(16, count - i) }, () => openSession(url, dispatcher)))
  }
  await dispatcher.close()
}

/**
 * S8: `count` distinct callers (`Tailscale-User-Login: caller-<i>`, for a gateway identifying
 * callers by that header), `concurrency` at a time, each opening a session and making one call;
 * their sessions are left open (idle) and returned, to close with {@link closeSessions}.
 */
export const openCallers = async (
  options: CallOptions & { readonly count: number; readonly concurrency: number }
): Promise<{ readonly sessions: Array<Record<string, string>>; readonly errors: number; readonly ms: number }> => {
  const dispatcher = new Agent({ connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 })
  const body = callBody(options)
  const sessions: Array<Record<string, string>> = []
  let errors = 0
  let next = 0
  const started = performance.now()
  const worker = async () => {
    while (next < options.count) {
      const i = next++
      try {
        const headers = await openSession(options.url, dispatcher, { "tailscale-user-login": `caller-${i}` })
        sessions.push(headers)
        if (!(await call(options.url, dispatcher, headers, body(i + 1)))) errors++
      } catch {
        errors++
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  const ms = performance.now() - started
  await dispatcher.close()
  return { sessions, errors, ms }
}
