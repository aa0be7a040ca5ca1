// S9's gateway: bench/gateway.config.ts (the same connectors, grants and callers) with
// `cluster: redis(…)` on the Redis at BENCH_REDIS_URL, to measure what Redis costs per call.
import { defineConfig, env, redis } from "aperture"
import base from "./gateway.config.js"

export default defineConfig({ ...base, cluster: redis({ url: env("BENCH_REDIS_URL") }), secretKey: env("APERTURE_SECRET_KEY") })
