/**
 * The `fetch` behind every request to an HTTP-based MCP upstream: undici's `request` over one
 * keep-alive pool, wrapped as a web `Response` for the MCP SDK's transports.
 *
 * Why not the global `fetch`: its WHATWG machinery (Request objects, body mixins, a
 * transferable AbortSignal per request, web streams for every body) cost more per call than the
 * SDK's own protocol work (`npm run bench -- --profile`; bench/README.md). A JSON answer is read whole here and handed
 * over as bytes; only an event stream stays a stream.
 *
 * What `fetch` does that this does not, and where that is left to `fetch` itself: a body that
 * is not a string (the SDK only sends strings), and redirects (followed by `fetch`, rare for an
 * MCP endpoint). Transport errors keep `fetch`'s shape (`TypeError("fetch failed", { cause })`),
 * which the connection code reads to explain a failure.
 * @module
 */
import { Readable } from "node:stream"
// undici's dispatcher and `request` only, not its index: the index loads all of undici (fetch,
// WebSocket, caches, mocks), a megabyte of the CLI's bundle and ~0.1 s of every start-up.
import Agent from "undici/lib/dispatcher/agent.js"
import dispatchRequest from "undici/lib/api/api-request.js"
import { version } from "../version.js"
import { isListenRequest } from "./listenFraming.js"

/** One pool for all upstreams: keep-alive per origin, as `fetch`'s global dispatcher does. */
const pool = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 10 * 60_000 })

const REDIRECT_STATUS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])
/** Statuses a `Response` must have no body for. */
const NULL_BODY_STATUS: ReadonlySet<number> = new Set([101, 103, 204, 205, 304])

const USER_AGENT = `aperture/${version}`

const requestHeaders = (init: HeadersInit | undefined): Record<string, string> => {
  const headers: Record<string, string> = {}
  if (init !== undefined) new Headers(init).forEach((value, name) => (headers[name] = value))
  headers["user-agent"] ??= USER_AGENT
  return headers
}

/** An answer's headers as web `Headers`. */
export const webHeaders = (raw: Record<string, string | Array<string> | undefined>): Headers => {
  const headers = new Headers()
  for (const name in raw) {
    const value = raw[name]
    if (typeof value === "string") headers.append(name, value)
    else if (value !== undefined) for (const item of value) headers.append(name, item)
  }
  return headers
}

/** One request to an upstream, without the WHATWG objects of `fetch` (see {@link upstreamExchange}). */
export interface ExchangeInit {
  readonly method: string
  /** Lower-case names. */
  readonly headers: Record<string, string>
  readonly body?: string
  readonly signal?: AbortSignal
}

/** An upstream's answer as undici gives it: a redirect is not followed. */
export interface UpstreamAnswer {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  /** Read once: `text()`, `json()`, `dump()` (discard), or iterated chunk by chunk. */
  readonly body: AnswerBody
}

export interface AnswerBody extends AsyncIterable<Uint8Array> {
  text(): Promise<string>
  json(): Promise<unknown>
  dump(): Promise<void>
}

/**
 * One request and its answer with no `Request`, `Headers`, `Response` or web stream: what the
 * gateway's own calls use (`upstreamCall`). Transport errors keep `fetch`'s shape.
 */
export const upstreamExchange = async (url: URL, init: ExchangeInit): Promise<UpstreamAnswer> => {
  const answer = await dispatch(url, init)
  return { status: answer.statusCode, headers: answer.headers, body: answer.body }
}

const dispatch = async (url: URL, init: ExchangeInit) => {
  const { body, signal } = init
  try {
    // What undici's top-level `request(url, options)` does, with the pool as the dispatcher.
    return await dispatchRequest.call(pool, {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: init.method as "GET",
      headers: init.headers,
      ...(body !== undefined && { body }),
      ...(signal !== undefined && { signal })
    })
  } catch (error) {
    // As `fetch`: an aborted request rejects with the signal's reason.
    if (signal?.aborted) throw signal.reason
    throw new TypeError("fetch failed", { cause: error })
  }
}

export const upstreamFetch = async (input: string | URL, init?: RequestInit): Promise<Response> => {
  const body = init?.body
  if (body != null && typeof body !== "string") return fetch(input, init)
  const method = init?.method ?? "GET"
  const signal = init?.signal ?? undefined
  const answer = await dispatch(typeof input === "string" ? new URL(input) : input, {
    method,
    headers: requestHeaders(init?.headers),
    ...(body != null && { body }),
    ...(signal !== undefined && { signal })
  })
  const status = answer.statusCode
  if (REDIRECT_STATUS.has(status) && answer.headers["location"] !== undefined) {
    await answer.body.dump()
    return fetch(input, init)
  }
  const headers = webHeaders(answer.headers)
  if (NULL_BODY_STATUS.has(status) || method === "HEAD") {
    await answer.body.dump()
    return new Response(null, { status, headers })
  }
  // A listen subscription streams whatever its type says (NDJSON as application/json, too).
  if (headers.get("content-type")?.startsWith("text/event-stream") === true || (method === "POST" && isListenRequest(body))) {
    return new Response(Readable.toWeb(answer.body) as ReadableStream<Uint8Array>, { status, headers })
  }
  try {
    return new Response(await answer.body.arrayBuffer(), { status, headers })
  } catch (error) {
    if (signal?.aborted) throw signal.reason
    throw new TypeError("fetch failed", { cause: error })
  }
}
