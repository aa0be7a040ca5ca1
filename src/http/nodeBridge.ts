/**
 * The hot path's I/O: read the request body straight from Node's `IncomingMessage` and write the
 * SDK's web `Response` straight to Node's response, instead of through Effect `Stream`s (the
 * stream conversions cost more than the MCP work itself: bench/README.md).
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

export class BodyTooLarge {
  readonly _tag = "BodyTooLarge"
}

/** The client stopped sending its body before the end. */
export class BodyTimedOut {
  readonly _tag = "BodyTimedOut"
}

const isIncomingMessage = (u: unknown): u is IncomingMessage =>
  typeof u === "object" && u !== null && typeof (u as IncomingMessage).on === "function" &&
  typeof (u as IncomingMessage).headers === "object"

/**
 * The request body as text, refusing more than `limit` bytes or a body still incomplete after
 * `timeout` (the server's own whole-request limit is an hour, for long proxied uploads; see
 * `Aperture.ts`).
 */
export const readBody = (
  request: HttpServerRequest.HttpServerRequest,
  limit: number,
  timeout: Duration.DurationInput
): Effect.Effect<string, BodyTooLarge | BodyTimedOut> => {
  const source = request.source
  if (isIncomingMessage(source)) return readIncoming(source, limit, Duration.toMillis(timeout))
  return request.text.pipe(
    Effect.orElseSucceed(() => ""),
    Effect.filterOrFail((text) => Buffer.byteLength(text) <= limit, () => new BodyTooLarge()),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new BodyTimedOut() })
  )
}

/** The deadline is a plain timer here, not `Effect.timeout`: that forks and interrupts a fiber per request. */
const readIncoming = (source: IncomingMessage, limit: number, timeoutMs: number) =>
  Effect.async<string, BodyTooLarge | BodyTimedOut>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        resume(Effect.fail(new BodyTooLarge()))
      } else chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
    }
    const onError = () => {
      cleanup()
      resume(Effect.succeed(""))
    }
    const timer = setTimeout(() => {
      cleanup()
      resume(Effect.fail(new BodyTimedOut()))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    return Effect.sync(cleanup)
  })

/** Node's response for `request`, when the server is Node's (an embedding host's may not be). */
export const nodeResponseOf = (request: HttpServerRequest.HttpServerRequest): ServerResponse | undefined =>
  isIncomingMessage(request.source) ? NodeHttpServerRequest.toServerResponse(request) : undefined

/**
 * Marks a response the client cut off as ended. The platform writes the handler's response
 * unless Node's is `writableEnded`; one cut mid-stream has sent its head but not ended, and
 * writing a head again throws (logged as an unhandled error on every early-closed stream).
 * Run before the platform's own `close` listener (`prependOnceListener`), which would otherwise
 * interrupt the request's fiber first and log the client's leaving as an unhandled 499: the
 * exchange is over and the stream cleaned up here, there is nothing to interrupt.
 */
const endIfCut = (out: ServerResponse) => {
  if (!out.writableEnded) out.end()
}

/**
 * Waits until `out` is over (ended, or the client went away), keeping the request's fiber until
 * then as `sendResponse` does; what was written is the response.
 */
export const untilClosed = (out: ServerResponse): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.async((resume) => {
    const done = () => {
      endIfCut(out)
      resume(Effect.succeed(HttpServerResponse.empty({ status: out.statusCode })))
    }
    if (out.closed) done()
    else out.prependOnceListener("close", done)
  })

/** Calls `onDone` once when the HTTP exchange is over (response sent, or the client went away). */
export const onExchangeDone = (request: HttpServerRequest.HttpServerRequest, onDone: () => void): boolean => {
  if (!isIncomingMessage(request.source)) return false
  NodeHttpServerRequest.toServerResponse(request).once("close", onDone)
  return true
}

/**
 * A signal that aborts when the client goes away before its response is complete: on the
 * 2026-07-28 era a closed request stream is how a client cancels a call.
 */
export const clientGoneSignal = (request: HttpServerRequest.HttpServerRequest): AbortSignal | undefined => {
  if (!isIncomingMessage(request.source)) return undefined
  const response = NodeHttpServerRequest.toServerResponse(request)
  const controller = new AbortController()
  response.once("close", () => {
    if (!response.writableEnded) controller.abort(new Error("client closed the connection"))
  })
  return controller.signal
}

const headersOf = (response: Response): Record<string, string> => {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  return headers
}

/**
 * A web `Response` as an Effect HTTP response, off Node (behind a web handler): its body stays the
 * web stream it is, so the host's response carries that very stream and a caller that stops
 * reading cancels it (which ends the call's count, see `onBodyDone`).
 */
export const toHttpResponse = (response: Response): HttpServerResponse.HttpServerResponse => {
  const headers = headersOf(response)
  if (response.body === null) {
    return HttpServerResponse.empty({ status: response.status, headers })
  }
  return HttpServerResponse.raw(response.body, { status: response.status, headers })
}

/** How long an event stream's first bytes may wait to leave with the answer. */
const FIRST_FLUSH_MS = 50

export interface FirstWritesHold {
  /** Lets what was held leave now (the socket's buffer is full, or the response is moving on). */
  readonly flush: () => void
  /** Stops holding without uncorking: `end` uncorks, and a closed response has nothing to send. */
  readonly stop: () => void
}

/**
 * Node 22 (seen on 22.23.3) mishandles a chunked response held with `cork()`: `end()` sends only
 * the first chunk held (cork, write A, write B, end → the client gets A), and a write that
 * returned false while corked gets no `drain` after `uncork()`. An event stream's quick answer is
 * its second chunk, so there nothing is corked: each event leaves in its own write (one write
 * more per quick call), and every answer arrives. The timer still says when the first events
 * left before the answer. (test/node22/run.ts runs the suite on Node 22: test/directCalls and
 * test/abuse/mcpFuzz are where it showed.)
 */
const CORK_LOSES_CHUNKS = Number(process.versions.node.split(".")[0]) >= 22

/**
 * Holds an event stream's head and first events (a 2025-era call's priming event, then its
 * answer), corked, until the stream ends or FIRST_FLUSH_MS pass: a quick call then leaves in one
 * write, not two (each write is a syscall, dear on a VM). Later events go
 * at once.
 */
export const holdFirstWrites = (
  out: ServerResponse,
  /** Called when what was held leaves before the stream ended (the client may see event ids from then on). */
  onRelease?: () => void
): FirstWritesHold => {
  if (!CORK_LOSES_CHUNKS) out.cork()
  let holding = true
  const stop = () => {
    holding = false
    clearTimeout(timer)
  }
  const flush = () => {
    if (!holding) return
    stop()
    if (!CORK_LOSES_CHUNKS) out.uncork()
    onRelease?.()
  }
  const timer = setTimeout(flush, FIRST_FLUSH_MS)
  return { flush, stop }
}

/** Sends the head now and holds nothing after it. */
const flushedHead = (out: ServerResponse): FirstWritesHold => {
  out.flushHeaders()
  return noHold
}

const noHold: FirstWritesHold = { flush: () => {}, stop: () => {} }

/**
 * Sends the SDK's web `Response` to the caller: a JSON body whole, an event stream chunk by
 * chunk straight into Node's response. Not through a streamed `HttpServerResponse`: the
 * platform's `stream.pipeline` costs an AbortController and a DOMException per response, and
 * `Readable.fromWeb` another stream (bench/README.md).
 * Completes when the response is over, so the platform (which writes nothing to an ended
 * response) keeps the request's fiber, and its interruption when the caller leaves, until then.
 */
export const sendResponse = (
  request: HttpServerRequest.HttpServerRequest,
  response: Response
): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const body = response.body
  if (body === null || !isIncomingMessage(request.source)) return Effect.succeed(toHttpResponse(response))
  if (response.headers.get("content-type")?.startsWith("text/event-stream") !== true) {
    return Effect.promise(() => response.arrayBuffer()).pipe(
      Effect.map((bytes) => HttpServerResponse.uint8Array(new Uint8Array(bytes), { status: response.status, headers: headersOf(response) }))
    )
  }
  const out = NodeHttpServerRequest.toServerResponse(request)
  return Effect.async<HttpServerResponse.HttpServerResponse>((resume) => {
    const reader = body.getReader()
    out.writeHead(response.status, headersOf(response))
    // A GET stream (2025 standalone stream) has no answer coming to ride with: its head leaves
    // now, or the client would wait for it until the first event or keepalive (15 s).
    const hold = request.method === "GET" ? flushedHead(out) : holdFirstWrites(out)
    // The caller left or the response ended: either way the exchange is over.
    out.prependOnceListener("close", () => {
      hold.stop()
      if (!out.writableFinished) reader.cancel().catch(() => {})
      endIfCut(out)
      resume(Effect.succeed(HttpServerResponse.empty({ status: response.status })))
    })
    const writable = () =>
      new Promise<void>((ready) => {
        const go = () => {
          out.off("drain", go)
          out.off("close", go)
          ready()
        }
        out.on("drain", go)
        out.on("close", go)
      })
    const pump = async () => {
      for (;;) {
        const chunk = await reader.read()
        if (chunk.done) break
        if (out.destroyed) return
        if (!out.write(chunk.value)) {
          hold.flush()
          await writable()
        }
      }
      // `end` uncorks: what was held leaves with the stream's end, in one write.
      hold.stop()
      out.end()
    }
    pump().catch(() => out.destroy())
    return Effect.sync(() => {
      reader.cancel().catch(() => {})
      out.destroy()
    })
  })
}

/**
 * Sends a response whose body is already in memory, in pieces, straight to Node's response (one
 * `writev`): no concatenated copy. Off Node (an embedding host's server), one copy it is.
 */
export const sendChunks = (
  request: HttpServerRequest.HttpServerRequest,
  status: number,
  headers: Record<string, string>,
  chunks: ReadonlyArray<Uint8Array>
): HttpServerResponse.HttpServerResponse => {
  if (!isIncomingMessage(request.source)) {
    return HttpServerResponse.uint8Array(Buffer.concat(chunks), { status, headers })
  }
  const out = NodeHttpServerRequest.toServerResponse(request)
  let length = 0
  for (const chunk of chunks) length += chunk.byteLength
  out.writeHead(status, { ...headers, "content-length": String(length) })
  // Corked until `end`, which uncorks: the pieces leave in one write.
  out.cork()
  for (let i = 0; i < chunks.length - 1; i++) out.write(chunks[i]!)
  out.end(chunks[chunks.length - 1])
  // The platform writes nothing to an ended response.
  return HttpServerResponse.empty({ status })
}
