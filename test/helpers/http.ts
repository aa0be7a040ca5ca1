/**
 * Raw HTTP requests for tests that need what `fetch` refuses or rewrites: hop-by-hop headers,
 * paths sent byte for byte (`..`, `%2f`, `\`), streamed bodies of any size.
 */
import { type IncomingHttpHeaders, request } from "node:http"
import type { Readable } from "node:stream"

export interface RawResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

export const rawRequest = (
  origin: string,
  path: string,
  options: { readonly method?: string; readonly headers?: Record<string, string>; readonly body?: string | Readable } = {}
): Promise<RawResponse> =>
  new Promise((resolve, reject) => {
    const url = new URL(origin)
    const req = request({
      hostname: url.hostname,
      port: url.port,
      path,
      method: options.method ?? "GET",
      headers: {
        ...(typeof options.body === "string" && { "content-length": String(Buffer.byteLength(options.body)) }),
        ...options.headers
      },
      agent: false
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }))
      res.on("error", reject)
    })
    req.on("error", reject)
    if (options.body === undefined) req.end()
    else if (typeof options.body === "string") req.end(options.body)
    else options.body.pipe(req)
  })

/** The parsed JSON body of a raw response. */
export const jsonOf = <A = Record<string, unknown>>(response: RawResponse): A => JSON.parse(response.body) as A
