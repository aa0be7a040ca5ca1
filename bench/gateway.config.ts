// The gateway under benchmark: the connectors in BENCH_CONNECTORS (JSON [{ "id", "url", "http"?,
// "isolation"? }]; `http: true` makes a REST connector on a loopback address), everything granted,
// logging quiet. Callers are the local one (loopback), or with BENCH_IDENTITY=trustedHeaders
// whoever the `Tailscale-User-Login` header of a loopback request names (S8's 1,000 callers).
import { defineConfig, grant, http, loopback, mcp, trustedHeaders } from "aperture"

const connectors: Array<{ id: string; url: string; http?: boolean; isolation?: "caller" | "shared" }> = JSON.parse(
  process.env["BENCH_CONNECTORS"] ?? "[]"
)
const byHeader = process.env["BENCH_IDENTITY"] === "trustedHeaders"

export default defineConfig({
  // S4 holds 1,000 idle sessions of one caller: above the default cap of 100 per caller.
  server: { sessionsPerCaller: 10_000 },
  connectors: Object.fromEntries(
    connectors.map((c) => [
      c.id,
      c.http === true
        ? http({ url: c.url, allowPrivate: true })
        : mcp({ url: c.url, ...(c.isolation !== undefined && { isolation: c.isolation }) })
    ])
  ),
  ...(byHeader && { identity: [trustedHeaders(), loopback({ login: "local" })] }),
  grants: [grant({ src: byHeader ? ["*"] : ["local"], connectors: ["**"] })]
})
