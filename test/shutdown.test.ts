/**
 * Shutting down with clients still connected: `close()` drains and returns, even when a
 * 2025-era client reopens its GET stream on a keep-alive socket the moment its session ends.
 */
import { afterAll, beforeAll, expect, it } from "vitest"
import { grant, mcp } from "../src/config/dsl.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { connectorsOf, connectV1, connectV2, eventually, startGateway } from "./helpers/gateway.js"

let fx: V2Upstream

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
})

afterAll(async () => {
  await fx?.close()
})

it("closes promptly with open sessions of both eras (no hang on a reopened GET stream)", async () => {
  const gateway = await startGateway({ connectors: { fx: mcp({ url: fx.url }) }, grants: [grant({ src: ["local"], connectors: ["**"] })] })
  await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "fx")?.status === "ready", 30_000)
  const modern = await connectV2(gateway.url)
  await modern.callTool({ name: "fx_echo", arguments: { message: "a" } })
  const { client: legacy } = await connectV1(gateway.url)
  await legacy.callTool({ name: "fx_echo", arguments: { message: "b" } })

  const started = Date.now()
  await gateway.close()
  // Nothing was in flight, so no drain wait: well under the 30 s drain timeout.
  expect(Date.now() - started).toBeLessThan(5_000)
  await expect(fetch(gateway.url, { method: "POST" })).rejects.toThrow()
}, 60_000)
