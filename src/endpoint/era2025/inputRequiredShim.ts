/**
 * An `input_required` result (2026-07-28) reaching a 2025-era caller, which cannot read it: its
 * questions are asked as real server→client requests and the call is retried with the answers,
 * as the SDK server's own shim does for the calls it serves (same round limit, same messages,
 * same per-family failure: a `tools/call` fails as an `isError` result). Used by the calls the
 * gateway answers without the SDK server (`sessionCalls.ts`).
 * @module
 */
import { type ClientCapabilities, ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server"
import * as Predicate from "effect/Predicate"
import { abortableDelay } from "../../upstream/abortableDelay.js"
import { missingCapability } from "../../upstream/callChannel.js"

/** Handler re-entries per call (the SDK shim's default). */
const MAX_ROUNDS = 8
/** How long the caller may take to answer one round (the SDK shim's default: people answer these). */
export const ROUND_TIMEOUT_MS = 600_000
/** Pause before retrying a round that carried only `requestState` (the SDK's pacing). */
const STATE_ONLY_PACING_MS = 250

const INPUT_METHODS: ReadonlySet<string> = new Set(["elicitation/create", "sampling/createMessage", "roots/list"])

export interface ShimHost {
  readonly method: string
  readonly signal: AbortSignal
  readonly capabilities: ClientCapabilities | undefined
  /** Asks the caller one question. */
  readonly ask: (request: { method: string; params?: Record<string, unknown> }, signal: AbortSignal, timeoutMs: number) => Promise<unknown>
  /** Calls again with the answers and the state the upstream handed back. */
  readonly retry: (inputResponses: Record<string, unknown> | undefined, requestState: string | undefined) => Promise<Record<string, unknown>>
}

const failure = (method: string, message: string): Record<string, unknown> => {
  if (method === "tools/call") return { content: [{ type: "text", text: message }], isError: true }
  throw new ProtocolError(ProtocolErrorCode.InternalError, message)
}

/** Runs rounds until the result is no longer `input_required`. */
export const fulfilInputRequired = async (host: ShimHost, first: Record<string, unknown>): Promise<Record<string, unknown>> => {
  const { method } = host
  let current = first
  for (let round = 1; ; round++) {
    if (round > MAX_ROUNDS) {
      return failure(method, `Multi-round-trip request '${method}' still required input after ${MAX_ROUNDS} rounds (inputRequired.maxRounds)`)
    }
    const inputRequests = Predicate.isRecord(current["inputRequests"]) ? current["inputRequests"] : undefined
    const hasRequests = inputRequests !== undefined && Object.keys(inputRequests).length > 0
    const requestState = typeof current["requestState"] === "string" ? current["requestState"] : undefined
    if (!hasRequests && requestState === undefined) {
      throw new ProtocolError(
        ProtocolErrorCode.InternalError,
        `Handler for ${method} returned an input-required result with neither inputRequests nor requestState (every InputRequiredResult must include at least one of the two)`
      )
    }
    let responses: Record<string, unknown> | undefined
    if (hasRequests) {
      const asked: Array<[string, { method: string; params?: Record<string, unknown> }]> = []
      for (const [key, entry] of Object.entries(inputRequests!)) {
        if (!Predicate.isRecord(entry) || typeof entry["method"] !== "string") {
          throw new ProtocolError(
            ProtocolErrorCode.InternalError,
            `Handler for ${method} returned an invalid input request '${key}': each inputRequests entry must be an embedded elicitation/create, sampling/createMessage, or roots/list request`
          )
        }
        const embeddedMethod = entry["method"]
        if (!INPUT_METHODS.has(embeddedMethod)) {
          throw new ProtocolError(
            ProtocolErrorCode.InternalError,
            `Handler for ${method} returned an input request '${key}' of kind '${embeddedMethod}', which is not an embedded request the 2026-07-28 revision defines`
          )
        }
        let params = Predicate.isRecord(entry["params"]) ? entry["params"] : undefined
        if (embeddedMethod !== "roots/list" && params === undefined) {
          throw new ProtocolError(
            ProtocolErrorCode.InternalError,
            `Handler for ${method} returned an input request '${key}' of kind '${embeddedMethod}' without params`
          )
        }
        // A sampling request offering tools needs a client that declared `sampling.tools`.
        const needsSamplingTools = embeddedMethod === "sampling/createMessage" &&
          (params?.["tools"] !== undefined || params?.["toolChoice"] !== undefined)
        if (
          missingCapability(host.capabilities, embeddedMethod, params) !== undefined ||
          (needsSamplingTools && host.capabilities?.sampling?.tools === undefined)
        ) {
          return failure(
            method,
            `Cannot request input '${key}' (${embeddedMethod}): the client on this 2025-era connection did not declare the required capability`
          )
        }
        // The 2025-11-25 URL mode requires an elicitation id (the 2026 in-band shape has none); a
        // form is named one, as the SDK's shim sends it.
        if (embeddedMethod === "elicitation/create" && params?.["mode"] === "url" && params["elicitationId"] === undefined) {
          params = { ...params, elicitationId: crypto.randomUUID() }
        } else if (embeddedMethod === "elicitation/create" && params?.["mode"] === undefined) {
          params = { ...params, mode: "form" }
        }
        asked.push([key, { method: embeddedMethod, ...(params !== undefined && { params }) }])
      }
      const round = new AbortController()
      const stop = () => round.abort(host.signal.reason)
      host.signal.addEventListener("abort", stop, { once: true })
      try {
        const answers = await Promise.all(asked.map(async ([key, request]) => {
          try {
            return [key, await host.ask(request, round.signal, ROUND_TIMEOUT_MS)] as const
          } catch (error) {
            round.abort(error)
            throw error
          }
        }))
        responses = Object.fromEntries(answers)
      } catch (error) {
        if (host.signal.aborted) throw error
        return failure(method, `Fulfilling input required by '${method}' failed: ${error instanceof Error ? error.message : String(error)}`)
      } finally {
        host.signal.removeEventListener("abort", stop)
      }
    } else {
      await abortableDelay(STATE_ONLY_PACING_MS, host.signal)
    }
    const next = await host.retry(responses, requestState)
    if (next["resultType"] !== "input_required") return next
    current = next
  }
}
