/**
 * JSON-RPC error objects both ways, as the SDK's `Protocol` makes and reads them: where the
 * gateway answers a request or reads an answer itself (direct calls, their requests to the
 * caller, an upstream's requests) instead of through the SDK.
 * @module
 */
import { ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/client"
import { type ProtocolFailure, protocolFailure } from "./outcome.js"

export interface JsonRpcErrorObject {
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

/** What was thrown, as a JSON-RPC error: its code when it is an integer (else -32603), its message and data. */
export const errorObjectOf = (error: unknown): JsonRpcErrorObject => {
  const { code, message, data } = (error ?? {}) as { code?: unknown; message?: unknown; data?: unknown }
  return {
    code: Number.isSafeInteger(code) ? code as number : ProtocolErrorCode.InternalError,
    message: typeof message === "string" ? message : "Internal error",
    ...(data !== undefined && { data })
  }
}

/** The `ProtocolError` an answer's `error` object stands for. */
export const protocolErrorOf = (error: Record<string, unknown>): ProtocolError =>
  new ProtocolError(
    Number.isSafeInteger(error["code"]) ? error["code"] as number : ProtocolErrorCode.InternalError,
    typeof error["message"] === "string" ? error["message"] : "Internal error",
    error["data"]
  )

/** An upstream's answer's `error` object, as the relay returns it (see {@link ProtocolFailure}). */
export const protocolFailureOf = (error: Record<string, unknown>): ProtocolFailure =>
  protocolFailure(
    Number.isSafeInteger(error["code"]) ? error["code"] as number : ProtocolErrorCode.InternalError,
    typeof error["message"] === "string" ? error["message"] : "Internal error",
    error["data"]
  )
