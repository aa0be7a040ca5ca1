/**
 * One raw HTTP exchange with a deadline, for abuse tests: any method, headers and body bytes
 * (what `fetch` would refuse or rewrite), and a response that must arrive in time. An event
 * stream answering a GET is never-ending by design, so its head (and what comes within
 * `streamGraceMs`) is the answer; any other body is read to its end.
 */
import { type IncomingHttpHeaders, request } from "node:http"

export interface BoundedResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
  /** The connection was cut by the deadline before the answer was complete. */
  readonly timedOut: boolean
}

export interface BoundedRequestOptions {
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly body?: string | Buffer
  /** The whole exchange (head and body) must finish within this. */
  readonly timeoutMs?: number
  /** How long a GET event stream is read before it is closed. */
  readonly streamGraceMs?: number
}

export const boundedRequest = (url: string, options: BoundedRequestOptions = {}): Promise<BoundedResponse> =>
  new Promise((resolve, reject) => {
    const target = new URL(url)
    const method = options.method ?? "GET"
    const chunks: Array<Buffer> = []
    let status = 0
    let headers: IncomingHttpHeaders = {}
    let settled = false
    const finish = (timedOut: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(deadline)
      req.destroy()
      resolve({ status, headers, body: Buffer.concat(chunks).toString("utf8"), timedOut })
    }
    const req = request({
      hostname: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method,
      headers: {
        ...(options.body !== undefined && { "content-length": String(Buffer.byteLength(options.body)) }),
        ...options.headers
      },
      agent: false
    }, (res) => {
      status = res.statusCode ?? 0
      headers = res.headers
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => finish(false))
      res.on("error", () => finish(false))
      if (method === "GET" && String(res.headers["content-type"]).startsWith("text/event-stream")) {
        setTimeout(() => finish(false), options.streamGraceMs ?? 200)
      }
    })
    const deadline = setTimeout(() => finish(true), options.timeoutMs ?? 5_000)
    req.on("error", (error) => {
      if (settled) return
      // The server may answer (413, say) and close before a large body is fully written.
      if (status !== 0) return finish(false)
      settled = true
      clearTimeout(deadline)
      reject(error)
    })
    req.end(options.body)
  })

/** The JSON-RPC messages of a body: one JSON value (object or batch array) or the `data:` lines of SSE events. */
export const messagesOf = (response: BoundedResponse): Array<unknown> => {
  if (response.body.trim() === "") return []
  if (String(response.headers["content-type"]).startsWith("text/event-stream")) {
    return response.body.split("\n")
      .filter((line) => line.startsWith("data:") && line.slice(5).trim() !== "")
      .map((line) => JSON.parse(line.slice(5)))
  }
  const parsed: unknown = JSON.parse(response.body)
  return Array.isArray(parsed) ? parsed : [parsed]
}
