/**
 * How a relayed request ended, as data rather than a thrown error: the relay is plain
 * TypeScript on the hot path, and the surface answering the caller turns a failure into its
 * own form once (the router into the SDK's `ProtocolError`, which the SDK server or the 2025
 * direct-call path send as a JSON-RPC error).
 * @module
 */

/** The upstream's result (or the caller's next `input_required` round). */
export interface RelayResult {
  readonly _tag: "Result"
  readonly value: Record<string, unknown>
}

/**
 * A JSON-RPC error for the caller: the upstream's own (its credential scrubbed), or the
 * gateway's (a timeout, a credential not ready, a broken connection, an invalid round state).
 */
export interface ProtocolFailure {
  readonly _tag: "ProtocolFailure"
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

/**
 * The request was aborted (the caller cancelled, the session closed) and nobody is answered;
 * `reason` is what the aborted request rejected with, rethrown as it was.
 */
export interface Cancelled {
  readonly _tag: "Cancelled"
  readonly reason: unknown
}

export type RelayOutcome = RelayResult | ProtocolFailure | Cancelled

export const relayResult = (value: Record<string, unknown>): RelayResult => ({ _tag: "Result", value })

export const protocolFailure = (code: number, message: string, data?: unknown): ProtocolFailure =>
  data === undefined ? { _tag: "ProtocolFailure", code, message } : { _tag: "ProtocolFailure", code, message, data }
