/**
 * Translating a 2025-era upstream's server→client requests for a 2026-07-28 caller, which can
 * only answer `input_required` results. The upstream call is held open: its questions go to
 * the caller as an `input_required` result, and when the caller retries with the answers they
 * are handed to the waiting upstream, which then answers (or asks again).
 * @module
 */
import { ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server"
import type { RelayOutcome } from "./outcome.js"

interface Question {
  readonly method: string
  readonly params: Record<string, unknown> | undefined
  readonly answer: (result: unknown) => void
  readonly fail: (error: Error) => void
}

export type HeldOutcome =
  | { readonly kind: "result"; readonly result: RelayOutcome }
  | { readonly kind: "questions"; readonly inputRequests: Record<string, { method: string; params?: Record<string, unknown> }> }

/** An upstream call waiting for its caller's answers. */
export class HeldCall {
  private readonly unasked: Array<Question> = []
  private readonly asked = new Map<string, Question>()
  private wake: (() => void) | undefined
  private counter = 0

  constructor(readonly result: Promise<RelayOutcome>, readonly abort: (reason: Error) => void) {}

  /** The upstream asks the caller something (called from the upstream's request handler). */
  ask(method: string, params: Record<string, unknown> | undefined): Promise<unknown> {
    return new Promise((answer, fail) => {
      this.unasked.push({ method, params, answer, fail })
      this.wake?.()
    })
  }

  /** Hands the caller's answers to the questions they belong to. Unanswered ones are asked again. */
  answer(inputResponses: Record<string, unknown> | undefined): void {
    for (const [key, question] of this.asked) {
      const response = inputResponses?.[key]
      if (response === undefined) {
        this.unasked.push(question)
      } else if (isError(response)) {
        question.fail(new ProtocolError(ProtocolErrorCode.InternalError, "the caller declined the request"))
      } else {
        question.answer(response)
      }
    }
    this.asked.clear()
  }

  /** How the upstream call ended, or the questions the caller must answer first. */
  async next(): Promise<HeldOutcome> {
    const questions = new Promise<"questions">((resolve) => {
      this.wake = () => resolve("questions")
      if (this.unasked.length > 0) resolve("questions")
    })
    const outcome = await Promise.race([this.result.then((result) => ({ result })), questions])
    this.wake = undefined
    if (outcome !== "questions") return { kind: "result", result: outcome.result }
    // Questions that arrive together are asked together.
    await new Promise((r) => setImmediate(r))
    const inputRequests: Record<string, { method: string; params?: Record<string, unknown> }> = {}
    for (const question of this.unasked.splice(0)) {
      const key = `upstream_${++this.counter}`
      this.asked.set(key, question)
      inputRequests[key] = { method: question.method, ...(question.params !== undefined && { params: question.params }) }
    }
    return { kind: "questions", inputRequests }
  }

  /** Fails every open question (the call was abandoned). */
  failAll(error: Error): void {
    for (const question of [...this.unasked.splice(0), ...this.asked.values()]) question.fail(error)
    this.asked.clear()
  }
}

const isError = (response: unknown) =>
  typeof response === "object" && response !== null && "error" in response && !("content" in response) && !("action" in response)

/** Held calls by token, each bound to its caller and connector, abandoned after `ttlMs`. */
export class HeldCalls {
  private readonly held = new Map<string, { readonly call: HeldCall; readonly owner: string; readonly timer: NodeJS.Timeout }>()

  constructor(private readonly ttlMs: number) {}

  hold(call: HeldCall, owner: string): string {
    const token = crypto.randomUUID()
    const timer = setTimeout(() => {
      this.held.delete(token)
      const error = new ProtocolError(ProtocolErrorCode.InternalError, "the caller did not answer in time")
      call.failAll(error)
      call.abort(error)
    }, this.ttlMs)
    timer.unref()
    this.held.set(token, { call, owner, timer })
    return token
  }

  /** The held call for a token, if it exists and belongs to `owner`. */
  take(token: string, owner: string): HeldCall | undefined {
    const entry = this.held.get(token)
    if (entry === undefined || entry.owner !== owner) return undefined
    this.held.delete(token)
    clearTimeout(entry.timer)
    return entry.call
  }

  /** Abandons every held call now (the gateway is closing): timers cleared, upstream calls aborted. */
  closeAll(error: Error): void {
    for (const { call, timer } of this.held.values()) {
      clearTimeout(timer)
      call.failAll(error)
      call.abort(error)
    }
    this.held.clear()
  }

  get size(): number {
    return this.held.size
  }
}
