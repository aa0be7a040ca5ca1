// The gateway under benchmark: one MCP connector to the echo upstream, everything granted.
import { defineConfig, grant, mcp } from "aperture"

export default defineConfig({
  connectors: { bench: mcp({ url: process.env["BENCH_UPSTREAM_URL"] ?? "http://127.0.0.1:1/mcp" }) },
  grants: [grant({ src: ["local"], connectors: ["**"] })]
})
