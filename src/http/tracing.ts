/**
 * Tracing that costs nothing where nothing collects it (`aperture start`, `Aperture.start`
 * install no tracer); `Aperture.layer` keeps every span for hosts with a tracer.
 * @module
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"

const always = () => true

/**
 * Tracing off. Two switches, because the platform's per-request `http.server` span does its
 * work before it asks the tracer: it parses the URL, copies the headers to redact them and reads
 * trace-context headers for every request, unless `withTracerDisabledWhen` says no.
 */
export const withoutTracing = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  effect.pipe(Effect.withTracerEnabled(false), HttpMiddleware.withTracerDisabledWhenEffect(always))

/**
 * `Effect.withSpan` for a per-request effect, made only when tracing is on: a span, even one the
 * disabled tracer drops, copies the fiber's whole context to hold itself as the parent span.
 * No stack trace is captured (an `Error` per call).
 */
export const withRequestSpan = (name: string) => {
  const spanned = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.withSpan(effect, name, { captureStackTrace: false })
  return <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiberRuntime((fiber) => fiber.getFiberRef(FiberRef.currentTracerEnabled) ? spanned(effect) : effect)
}
