/**
 * The layer that turns OpenTelemetry export on, or adds nothing at all when it is off.
 * @module
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { TelemetrySettings } from "../config/model.js"
import type { Telemetry } from "./Telemetry.js"

/**
 * `Layer.empty` without settings: no tracer, no SDK loaded, no {@link Telemetry} service (so the
 * services that look it up, with `Effect.serviceOption`, keep their untraced functions). With
 * settings, the SDK is imported then, not when the gateway's modules load. Typed as providing
 * nothing, since {@link Telemetry} may be absent: nothing may require it.
 */
export const telemetryLayer = (settings: TelemetrySettings | undefined): Layer.Layer<never> =>
  settings === undefined
    ? Layer.empty
    : Layer.unwrapEffect(Effect.map(Effect.promise(() => import("./otlpExport.js")), (sdk) => sdk.otlpLayer(settings)))
