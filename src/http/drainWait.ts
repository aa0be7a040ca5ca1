/**
 * Shutdown's wait for the requests a surface has in flight, bounded: at most `timeoutMs`, then a
 * warning naming how many were left. Interruptible on purpose: drains run in finalizers (an
 * uninterruptible region), where a plain timeout could not stop the wait, and one request that
 * never ends would hold shutdown for ever.
 * @module
 */
import * as Effect from "effect/Effect"

export const waitUntilIdle = (inFlight: () => number, timeoutMs: number, what: string): Effect.Effect<void> =>
  Effect.gen(function*() {
    while (inFlight() > 0) yield* Effect.sleep("20 millis")
  }).pipe(
    Effect.interruptible,
    Effect.timeout(timeoutMs),
    Effect.catchTag("TimeoutException", () => Effect.logWarning(`shutdown: ${inFlight()} ${what} still running after ${timeoutMs} ms`))
  )
