// The gateway under benchmark: the connectors in BENCH_CONNECTORS (JSON [{ "id", "url" }]),
// everything granted to the local caller, logging quiet.
import { defineConfig, grant, mcp } from "aperture"

const connectors: Array<{ id: string; url: string }> = JSON.parse(process.env["BENCH_CONNECTORS"] ?? "[]")

export default defineConfig({
  connectors: Object.fromEntries(connectors.map((c) => [c.id, mcp({ url: c.url })])),
  grants: [grant({ src: ["local"], connectors: ["**"] })]
})
