/**
 * Global setup of the `cluster` test project (vitest.config.ts): one real Redis for the whole
 * run, its URL handed to the tests (`inject("clusterRedisUrl")`), so the session suites that run
 * in both projects exercise the Redis implementations (session slots, records, event log, bus)
 * as well as the one-process ones.
 */
import type { TestProject } from "vitest/node"
import { startRedis } from "./redis.js"

declare module "vitest" {
  export interface ProvidedContext {
    clusterRedisUrl: string
  }
}

export default async function setup(project: TestProject) {
  const redis = await startRedis()
  project.provide("clusterRedisUrl", redis.url)
  return () => redis.stop()
}
