// The gateway under benchmark: the connectors in BENCH_CONNECTORS (JSON [{ "id", "url", "http"? }];
// `http: true` makes a REST connector on a loopback address), everything granted to the local
// caller, logging quiet.
import { defineConfig, grant, http, mcp } from "aperture"

const connectors: Array<{ id: string; url: string; http?: boolean }> = JSON.parse(process.env["BENCH_CONNECTORS"] ?? "[]")

export default defineConfig({
  connectors: Object.fromEntries(
    connectors.map((c) => [c.id, c.http === true ? http({ url: c.url, allowPrivate: true }) : mcp({ url: c.url })])
  ),
  grants: [grant({ src: ["local"], connectors: ["**"] })]
})
