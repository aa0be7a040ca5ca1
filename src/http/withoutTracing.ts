/**
 * Tracing off, for where no tracer is installed (`aperture start`, `Aperture.start`): there every
 * span is made and dropped. Two switches, because the platform's per-request `http.server` span
 * does its work before it asks the tracer: it parses the URL, copies the headers to redact them
 * and reads trace-context headers for every request, unless `withTracerDisabledWhen` says no.
 * `Aperture.layer` leaves both on, for hosts with a tracer.
 * @module
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as Effect from "effect/Effect"

const always = () => true

export const withoutTracing = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  effect.pipe(Effect.withTracerEnabled(false), HttpMiddleware.withTracerDisabledWhenEffect(always))
