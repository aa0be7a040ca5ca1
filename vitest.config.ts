import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts", "plugins/**/*.test.ts", "examples/**/*.test.ts", "bench/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real servers and child processes; keep files from starving each other on 2 cores.
    maxWorkers: 2,
    // The interop matrix (test/interop) as tables after the summary; silent when no interop test ran.
    reporters: ["default", "./test/interop/matrixReporter.ts"],
    // The gateways the tests start cache transpiled configs here, not in the user's ~/.cache.
    env: { XDG_CACHE_HOME: fileURLToPath(new URL("node_modules/.cache/aperture-test", import.meta.url)) },
    minWorkers: 1
  }
})
