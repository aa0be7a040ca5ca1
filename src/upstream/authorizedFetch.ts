/**
 * The `fetch` every HTTP-based upstream transport uses, and the leaner exchange the gateway's own
 * calls use: the connector's credential is added to each request; a 401 lets the credential
 * refresh, and the request is sent once more (see {@link credentialRunner}'s `again`). The
 * caller's own `Authorization` never gets here: upstream requests are built by the gateway, not
 * copied from the caller's.
 * @module
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type { AuthError, Authorization, Credential, UpstreamRequest } from "../plugin/AuthPlugin.js"
import { authorizationSecrets, scrubSecrets, type SentCredentials } from "../auth/scrubSecrets.js"
import { isEventStream, onBodyDone } from "../http/responseBody.js"
import { readBounded, scrubbedCut } from "../http/boundedBody.js"
import { callInContext, type DownstreamCall } from "./callChannel.js"
import { type ExchangeInit, type UpstreamAnswer, upstreamExchange, upstreamFetch, webHeaders } from "./upstreamFetch.js"

export type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>

/** Thrown into the MCP SDK when the credential could not be produced; the connector reads `authError`. */
export class CredentialUnavailable extends Error {
  constructor(readonly authError: AuthError) {
    super(authError.message)
    this.name = "CredentialUnavailable"
  }
}

/**
 * The call stopped waiting for the connector's credential (its timeout, or its caller cancelled)
 * before the credential was ready: the request was never sent. The credential's own work (a
 * token request other calls wait for too) goes on.
 */
export class CredentialWaitAborted extends Error {
  constructor(readonly reason: unknown) {
    super("stopped waiting for the connector's credential (e.g. its token endpoint) before it was ready; the request was not sent")
    this.name = "CredentialWaitAborted"
  }
}

/** `url` with the authorization's query parameters, if it has any. */
const authorizedUrl = (url: URL, authorization: Authorization): URL => {
  const query = Object.entries(authorization.query ?? {})
  if (query.length === 0) return url
  const withQuery = new URL(url)
  for (const [name, value] of query) withQuery.searchParams.set(name, value)
  return withQuery
}

/** A connector's credential at work: authorizing requests, and deciding after a 401. */
const credentialRunner = (credential: Credential, runtime: Runtime.Runtime<never>) => {
  const run = Runtime.runPromise(runtime)
  const runNow = Runtime.runSyncExit(runtime)
  const settled = (exit: Exit.Exit<Authorization, AuthError>): Authorization => {
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) throw new CredentialUnavailable(failure.value)
    throw Runtime.makeFiberFailure(exit.cause)
  }
  /**
   * The wait for a credential is part of the request: its signal (the call's timeout, its
   * caller's cancellation) ends the wait at once. Only this request's fiber is interrupted; a
   * shared token request goes on for the others (see `clientCredentials`).
   */
  const waitWithin = (fiber: Fiber.RuntimeFiber<Authorization, AuthError>, signal: AbortSignal) =>
    new Promise<Authorization>((resolve, reject) => {
      const stop = () => {
        run(Fiber.interruptFork(fiber)).catch(() => {})
        reject(new CredentialWaitAborted(signal.reason))
      }
      if (signal.aborted) return stop()
      signal.addEventListener("abort", stop, { once: true })
      run(Fiber.await(fiber)).then((exit) => {
        signal.removeEventListener("abort", stop)
        if (signal.aborted) return
        try {
          resolve(settled(exit))
        } catch (error) {
          reject(error)
        }
      }, reject)
    })
  return {
    /**
     * Most credentials answer at once (a static header: Effect's fast path runs no fiber at all;
     * a cached token), so they run synchronously: a promise and a fiber per upstream request
     * showed in the call's profile (bench/README.md). One that has to wait (a token request) goes on in its fiber.
     */
    authorization: (request: UpstreamRequest, signal: AbortSignal | null | undefined): Authorization | Promise<Authorization> => {
      const exit = runNow(credential.authorize(request))
      if (Exit.isFailure(exit)) {
        const defect = Cause.dieOption(exit.cause)
        if (Option.isSome(defect) && Runtime.isAsyncFiberException(defect.value)) {
          const fiber = defect.value.fiber as Fiber.RuntimeFiber<Authorization, AuthError>
          return signal == null ? run(Fiber.await(fiber)).then(settled) : waitWithin(fiber, signal)
        }
      }
      return settled(exit)
    },
    /**
     * After a 401: whether to send the request once more, which the credential decides (it
     * refreshes first). Any request may be: a 401 says the request "has not been applied because
     * it lacks valid authentication credentials" (RFC 9110 §15.5.2), so one retry with a fresh
     * credential repeats nothing, a `tools/call` included. Only a body that was streamed (not in
     * memory) cannot be sent twice; the credential still drops what was refused, so the next
     * request carries a fresh one. A second 401 is the answer: the credential itself is refused.
     */
    again: async (request: UpstreamRequest, refused: Response, hasBody = request.body !== undefined): Promise<boolean> => {
      if (credential.onUnauthorized === undefined) return false
      const retry = await run(Effect.either(credential.onUnauthorized(request, refused)))
      if (retry._tag === "Left") throw new CredentialUnavailable(retry.left)
      return retry.right && (!hasBody || request.body !== undefined)
    }
  }
}

/** The controllers of the exchanges in flight under each transport-lifetime signal. */
const linked = new WeakMap<AbortSignal, Set<AbortController>>()

/** Links `inner` to `outer` until the returned function is called; one listener per `outer`. */
const link = (outer: AbortSignal, inner: AbortController): () => void => {
  let members = linked.get(outer)
  if (members === undefined) {
    const created = new Set<AbortController>()
    members = created
    linked.set(outer, created)
    outer.addEventListener("abort", () => {
      for (const controller of created) controller.abort(outer.reason)
      created.clear()
    }, { once: true })
  }
  members.add(inner)
  return () => void members.delete(inner)
}

/**
 * Runs `fetch` with a signal of its own, linked to the caller's for as long as the exchange
 * lasts. The MCP SDK passes one transport-lifetime signal to every request; handing that to
 * `fetch` directly leaves one abort listener per request on it until garbage collection
 * (thousands under load, and Node's MaxListeners warning past ten at once). Here the signal
 * has one listener, and each exchange leaves the set when its response is over.
 */
export const fetchWithLinkedSignal = async (url: URL | string, init: RequestInit | undefined): Promise<Response> => {
  const outer = init?.signal
  if (outer == null) return upstreamFetch(url, init)
  if (outer.aborted) return upstreamFetch(url, init)
  const inner = new AbortController()
  const unlink = link(outer, inner)
  let response: Response
  try {
    response = await upstreamFetch(url, { ...init, signal: inner.signal })
  } catch (error) {
    unlink()
    throw error
  }
  // A JSON body is read right away; only a stream (SSE) needs the link until it ends.
  if (response.body === null || !isEventStream(response)) {
    unlink()
    return response
  }
  const call = callInContext()
  return onBodyDone(response, () => {
    unlink()
    if (call?.closeStream !== undefined && init?.method === "POST") mirrorEarlyClose(call, call.closeStream)
  })
}

/**
 * The upstream ended a call's response stream before answering (SSE polling): end the
 * caller's stream too, so its client resumes with Last-Event-ID as it would directly. Checked
 * a moment later, since the answer and the end of the stream arrive together.
 */
const mirrorEarlyClose = (call: DownstreamCall, closeStream: () => void) => {
  setTimeout(() => {
    if (!call.answered) closeStream()
  }, 20)
}

export interface AuthorizedFetchOptions {
  readonly credential: Credential | undefined
  readonly runtime: Runtime.Runtime<never>
  /** Called with every upstream status, e.g. to notice a refused credential. */
  readonly onResponse?: (response: Response) => void
  /** Told each authorization sent, to scrub it from errors the MCP client reads (a JSON-RPC error in an HTTP 200). */
  readonly sent?: SentCredentials | undefined
}

/** Wraps {@link upstreamFetch} so each upstream request carries the connector's credential. */
export const authorizedFetch = (options: AuthorizedFetchOptions): FetchLike => {
  const { credential, runtime } = options
  if (credential === undefined) {
    return async (url, init) => {
      const response = await fetchWithLinkedSignal(url, init)
      options.onResponse?.(response)
      return response.status < 400 ? response : boundedErrorAnswer(response)
    }
  }
  const credentials = credentialRunner(credential, runtime)
  return async (input, init) => {
    const url = new URL(input)
    const method = init?.method ?? "GET"
    const body = typeof init?.body === "string" ? init.body : undefined
    const send = async () => {
      const headers = new Headers(init?.headers)
      const request: UpstreamRequest = { url, method, headers, body }
      const authorization = await credentials.authorization(request, init?.signal)
      options.sent?.note(authorization)
      for (const [name, value] of Object.entries(authorization.headers ?? {})) headers.set(name, value)
      const response = await fetchWithLinkedSignal(authorizedUrl(url, authorization), { ...init, headers })
      return { request, response: await withoutEchoedSecrets(response, authorization) }
    }
    const first = await send()
    if (first.response.status !== 401) {
      options.onResponse?.(first.response)
      return first.response
    }
    let again: boolean
    try {
      again = await credentials.again(first.request, first.response, init?.body != null)
    } catch (error) {
      await first.response.body?.cancel().catch(() => {})
      throw error
    }
    if (!again) {
      options.onResponse?.(first.response)
      return first.response
    }
    await first.response.body?.cancel().catch(() => {})
    const second = await send()
    options.onResponse?.(second.response)
    return second.response
  }
}

/** An error answer with only the start of its body, which the MCP SDK would read whole into its error. */
const boundedErrorAnswer = async (response: Response): Promise<Response> => {
  const bounded = await readBounded(response.body as AsyncIterable<Uint8Array> | null)
  return new Response(bounded.cut ? `${bounded.text}… (cut)` : bounded.text, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers
  })
}

/**
 * An upstream's error answer with the credential it was sent taken out of its text: a server's
 * error page may echo the request's headers or URL, and that text reaches the caller and logs.
 * Only its first few KB are read (see {@link readBounded}).
 */
const withoutEchoedSecrets = async (response: Response, authorization: Authorization): Promise<Response> => {
  if (response.status < 400) return response
  const bounded = await readBounded(response.body as AsyncIterable<Uint8Array> | null)
  const secrets = authorizationSecrets(authorization)
  return new Response(scrubbedCut(scrubSecrets(bounded.text, secrets), bounded, secrets), {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers
  })
}

/** {@link upstreamExchange} with a connector's credential: what the gateway's own calls send. */
export type ExchangeLike = (url: URL, init: ExchangeInit) => Promise<UpstreamAnswer>

/** An answer whose body was read already (to scrub it, or to show a 401 to the credential). */
const answerOfText = (answer: UpstreamAnswer, text: string): UpstreamAnswer => ({
  ...answer,
  body: {
    text: async () => text,
    json: async () => JSON.parse(text) as unknown,
    dump: async () => {},
    [Symbol.asyncIterator]: async function*() {
      yield new TextEncoder().encode(text)
    }
  }
})

/**
 * As {@link authorizedFetch}, for the gateway's own calls: no web `Headers` or `Response` per
 * request (they showed in the call's profile), unless the credential reads the request's headers or a 401 has to be
 * shown to it (its API takes web objects).
 */
export const authorizedExchange = (options: Pick<AuthorizedFetchOptions, "credential" | "runtime" | "sent">): ExchangeLike => {
  const { credential, runtime } = options
  if (credential === undefined) return upstreamExchange
  const credentials = credentialRunner(credential, runtime)
  const send = async (url: URL, init: ExchangeInit) => {
    // The request's headers as web `Headers` only if the credential reads them; after
    // authorizing, they are the headers sent (a 401 handler compares the credential it sent).
    let read: Headers | undefined
    let sent: Record<string, string> = init.headers
    const request: UpstreamRequest = {
      url,
      method: init.method,
      body: init.body,
      get headers() {
        return (read ??= new Headers(sent))
      }
    }
    const authorization = await credentials.authorization(request, init.signal)
    options.sent?.note(authorization)
    const headers: Record<string, string> = read === undefined ? { ...init.headers } : Object.fromEntries(read)
    for (const [name, value] of Object.entries(authorization.headers ?? {})) {
      headers[name.toLowerCase()] = value
      read?.set(name, value)
    }
    sent = headers
    const answer = await upstreamExchange(authorizedUrl(url, authorization), { ...init, headers })
    // An error answer is read here, to take the credential out of its text (see withoutEchoedSecrets).
    if (answer.status < 400) return { request, answer, text: undefined }
    const bounded = await readBounded(answer.body)
    const secrets = authorizationSecrets(authorization)
    const text = scrubbedCut(scrubSecrets(bounded.text, secrets), bounded, secrets)
    return { request, answer: answerOfText(answer, text), text }
  }
  return async (url, init) => {
    const first = await send(url, init)
    if (first.answer.status !== 401 || credential.onUnauthorized === undefined) return first.answer
    const refused = new Response(first.text ?? "", { status: 401, headers: webHeaders(first.answer.headers) })
    if (!(await credentials.again(first.request, refused))) return first.answer
    return (await send(url, init)).answer
  }
}
