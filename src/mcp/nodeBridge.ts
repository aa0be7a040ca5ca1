/**
 * The hot path's I/O: read the request body straight from Node's `IncomingMessage` and hand the
 * SDK's web `Response` to Node as a stream, instead of through Effect `Stream`s (measured: the
 * Effect stream conversions cost more than the MCP work itself).
 * @module
 */
import type { IncomingMessage } from "node:http"
import { Readable } from "node:stream"
import { HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import type { HttpServerRequest } from "@effect/platform"
import { Effect } from "effect"

export class BodyTooLarge {
  readonly _tag = "BodyTooLarge"
}

const isIncomingMessage = (u: unknown): u is IncomingMessage =>
  typeof u === "object" && u !== null && typeof (u as IncomingMessage).on === "function" &&
  typeof (u as IncomingMessage).headers === "object"

/** The request body as text, refusing more than `limit` bytes. */
export const readBody = (request: HttpServerRequest.HttpServerRequest, limit: number): Effect.Effect<string, BodyTooLarge> => {
  const source = request.source
  if (!isIncomingMessage(source)) {
    return request.text.pipe(
      Effect.orElseSucceed(() => ""),
      Effect.filterOrFail((text) => Buffer.byteLength(text) <= limit, () => new BodyTooLarge())
    )
  }
  return Effect.async<string, BodyTooLarge>((resume) => {
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
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
  })
}

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

/** A web `Response` as an Effect HTTP response whose body Node pipes itself. */
export const toHttpResponse = (response: Response): HttpServerResponse.HttpServerResponse => {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  if (response.body === null) {
    return HttpServerResponse.empty({ status: response.status, headers })
  }
  return HttpServerResponse.raw(Readable.fromWeb(response.body as never), { status: response.status, headers })
}
