/**
 * A closed-loop load generator speaking MCP's 2025-era streamable HTTP directly (pre-built
 * request bodies, keep-alive connections), so the client costs little next to what it measures.
 */
import { Agent, request } from "undici"

export interface LoadResult {
  readonly requests: number
  readonly errors: number
  readonly seconds: number
  readonly latenciesMs: Float64Array
}

const HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25"
}

/** Opens an MCP session (if the server keeps sessions) and returns the headers every call needs. */
export const openSession = async (url: string, dispatcher: Agent): Promise<Record<string, string>> => {
  const init = await request(url, {
    method: "POST",
    dispatcher,
    headers: HEADERS,
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
  const headers: Record<string, string> = { ...HEADERS, ...(typeof session === "string" && { "mcp-session-id": session }) }
  const initialized = await request(url, {
    method: "POST",
    dispatcher,
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })
  })
  await initialized.body.text()
  return headers
}

/** `concurrency` workers each call `tool` back to back for `seconds`. */
export const closedLoop = async (options: {
  readonly url: string
  readonly tool: string
  readonly message: string
  readonly concurrency: number
  readonly seconds: number
}): Promise<LoadResult> => {
  const dispatcher = new Agent({ connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 })
  const headers = await Promise.all(Array.from({ length: options.concurrency }, () => openSession(options.url, dispatcher)))
  const body = (id: number) =>
    `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":${JSON.stringify(options.tool)},"arguments":{"message":${
      JSON.stringify(options.message)
    }}}}`
  const latencies: Array<number> = []
  let errors = 0
  let id = 1
  const deadline = performance.now() + options.seconds * 1000
  const worker = async (h: Record<string, string>) => {
    while (performance.now() < deadline) {
      const started = performance.now()
      try {
        const response = await request(options.url, { method: "POST", dispatcher, headers: h, body: body(id++) })
        const text = await response.body.text()
        if (response.statusCode !== 200 || !text.includes("\"result\"")) errors++
        else latencies.push(performance.now() - started)
      } catch {
        errors++
      }
    }
  }
  const started = performance.now()
  await Promise.all(headers.map(worker))
  const seconds = (performance.now() - started) / 1000
  await dispatcher.close()
  return { requests: latencies.length, errors, seconds, latenciesMs: Float64Array.from(latencies).sort() }
}

export const percentile = (sorted: Float64Array, p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
