import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

/** Suites of 2025-era sessions that run in both projects (see `cluster` below). */
const CLUSTER_MODE_SUITES = [
  "test/directCalls.test.ts",
  "test/directLists.test.ts",
  "test/directStreamEnd.test.ts",
  "test/interactions.test.ts",
  "test/sessionIdentity.test.ts",
  "test/sessionCaps.test.ts",
  "test/sessionIdle.test.ts",
  "test/getStream.test.ts",
  "test/isolation.test.ts",
  "test/resourceSubscriptions.test.ts",
  "test/abuse/sessions.test.ts"
]

/** The gateways the tests start cache transpiled configs here, not in the user's ~/.cache. */
const XDG_CACHE_HOME = fileURLToPath(new URL("node_modules/.cache/aperture-test", import.meta.url))

/**
 * `aperture`, the name this repository's examples and configs import the package by, is no
 * longer its own (the package is `aperture-gateway`): resolved as Node resolved the self-reference
 * before, to the build.
 */
const resolve = {
  alias: [{ find: /^aperture$/, replacement: fileURLToPath(new URL("dist/src/index.js", import.meta.url)) }]
}

/** What both projects run with. */
const common = {
  testTimeout: 60_000,
  hookTimeout: 60_000
}

export default defineConfig({
  test: {
    // Integration tests start real servers and child processes; keep files from starving each other on 2 cores.
    maxWorkers: 2,
    minWorkers: 1,
    // The interop matrix (test/interop) as tables after the summary; silent when no interop test ran.
    reporters: ["default", "./test/interop/matrixReporter.ts"],
    projects: [
      {
        resolve,
        test: {
          ...common,
          name: "single",
          include: ["test/**/*.test.ts", "src/**/*.test.ts", "plugins/**/*.test.ts", "examples/**/*.test.ts", "bench/**/*.test.ts"],
          env: { XDG_CACHE_HOME }
        }
      },
      {
        // The 2025-era session suites again, each gateway a one-replica cluster on a real Redis:
        // the shared state's Redis implementations pass the same tests as the in-memory ones.
        resolve,
        test: {
          ...common,
          name: "cluster",
          include: CLUSTER_MODE_SUITES,
          globalSetup: ["test/helpers/clusterModeSetup.ts"],
          env: { XDG_CACHE_HOME, APERTURE_TEST_PROJECT: "cluster" }
        }
      }
    ]
  }
})
