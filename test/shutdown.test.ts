/**
 * Shutting down with clients still connected: `close()` drains and returns, even when a
 * 2025-era client reopens its GET stream on a keep-alive socket the moment its session ends.
 * Shutting down while a connector is closing a silent stdio process: `close()` returns too.
 */
import { afterAll, beforeAll, expect, it } from "vitest"
import { grant, mcp, stdio } from "../src/config/dsl.js"
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

it("closes promptly while a stdio connector that never answered is closing its process (the connector stops, not reconnects)", async () => {
  // Reads and never writes, and outlives the end of its stdin, so closing it takes the SDK's
  // 2 s wait and a SIGTERM: a close of the gateway lands while the connector's session is
  // closing it. (It exits 5 s after its stdin ends in any case, so none outlives a failed run.)
  const mute = stdio({
    command: process.execPath,
    args: ["-e", "process.stdin.on(\"end\", () => setTimeout(() => process.exit(0), 5000)).resume()"],
    timeout: 2000
  })
  // Around the 2 s readiness deadline: connecting, the deadline itself, and the ~2 s after it
  // that the failed session's scope waits for the process (the interruption used to be lost
  // there: the connector reconnected for ever and close never returned).
  const closeAfter = [1500, 2000, 2100, 2300, 2600, 3000, 3500]
  const outcomes = await Promise.all(closeAfter.map(async (delay) => {
    const gateway = await startGateway({ connectors: { mute } })
    await new Promise((resolve) => setTimeout(resolve, delay))
    const started = Date.now()
    const outcome = await Promise.race([
      gateway.close().then(() => Date.now() - started),
      new Promise<string>((resolve) => setTimeout(() => resolve("hung"), 12_000).unref())
    ])
    return { delay, outcome }
  }))
  for (const { delay, outcome } of outcomes) {
    expect(outcome, `closed ${delay} ms after start`).toBeTypeOf("number")
    // At most the SDK's wait for the process to end (2 s), then its SIGTERM.
    expect(outcome as number, `closed ${delay} ms after start`).toBeLessThan(6_000)
  }
}, 60_000)
