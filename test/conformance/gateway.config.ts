// The gateway as the conformance suite sees it: the fixture behind it, names unprefixed
// (the scenarios call fixed names), everything granted to the local caller.
import { defineConfig, grant, mcp } from "aperture"

export default defineConfig({
  connectors: { conformance: mcp({ url: process.env["CONFORMANCE_UPSTREAM_URL"] ?? "http://localhost:1/mcp", prefix: false }) },
  grants: [grant({ src: ["local"], connectors: ["**"] })]
})
