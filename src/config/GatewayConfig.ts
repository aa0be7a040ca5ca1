/**
 * The loaded config, as a service every part of the running gateway reads.
 * @module
 */
import * as Context from "effect/Context"
import type { ApertureConfig } from "./model.js"

export class GatewayConfig extends Context.Tag("aperture/GatewayConfig")<GatewayConfig, ApertureConfig>() {}
