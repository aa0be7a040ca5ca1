/**
 * A connector is ready, or down with a reason, within its timeout: readiness never waits on a
 * 2026-era listen stream (which is read in either framing), and an upstream that never answers
 * makes the connector `down` saying what it waited for.
 */
import { createServer, type Server, type Socket } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, mcp, stdio } from "../src/config/dsl.js"
import { connectorsOf, connectV2, eventually, startGateway } from "./helpers/gateway.js"
import { startNdjsonListenFront } from "./fixtures/ndjsonListenFront.js"
import { startV2Upstream } from "./fixtures/v2Upstream.js"

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})

const everyone = [grant({ src: ["local"], connectors: ["**"] })]

/** Polls a connector's status until `until` holds; returns it and the time it took. */
const watchStatus = async (gateway: RunningGateway, id: string, until: (status: string) => boolean, timeoutMs: number) => {
  const started = Date.now()
  const connector = await eventually(async () => {
    const found = (await connectorsOf(gateway)).connectors.find((c) => c.id === id)
    return found !== undefined && until(found.status) ? found : undefined
  }, timeoutMs, `${id} to settle`)
  return { connector, after: Date.now() - started }
}

describe("a 2026-era upstream whose listen stream is newline-delimited JSON", () => {
  it("is ready without waiting on the stream, and its list changes arrive on it", async () => {
    const upstream = await startV2Upstream({ name: "ndjson" })
    cleanups.push(() => upstream.close())
    const front = await startNdjsonListenFront(upstream.url)
    cleanups.push(() => front.close())
    const gateway = await startGateway({ connectors: { nd: mcp({ url: front.url, timeout: 20_000 }) }, grants: everyone })
    cleanups.push(() => gateway.close())

    const { after, connector } = await watchStatus(gateway, "nd", (s) => s !== "connecting", 25_000)
    expect(connector.status).toBe("ready")
    expect(connector.tools).toContain("nd_echo")
    // Far below the 20 s timeout the SDK's connect waited for the stream's acknowledgement.
    expect(after).toBeLessThan(5_000)

    // The stream is read (as NDJSON): a tool added upstream shows up long before any re-listing timer.
    await eventually(() => front.listens() > 0, 5_000, "the listen stream to be opened")
    await new Promise((r) => setTimeout(r, 300))
    upstream.addTool("added")
    await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "nd")?.tools.includes("nd_added"), 5_000, "nd_added listed")
    const client = await connectV2(gateway.url)
    cleanups.push(() => client.close())
    expect((await client.callTool({ name: "nd_added", arguments: {} })).content).toEqual([{ type: "text", text: "extra added" }])
    expect((await connectorsOf(gateway)).connectors.find((c) => c.id === "nd")?.status).toBe("ready")
  })
})

describe("an upstream that never answers", () => {
  it("over HTTP (the connection accepted, nothing said) is down within its timeout, saying what it waited for", async () => {
    const sockets = new Set<Socket>()
    const silent: Server = createServer((socket) => void sockets.add(socket))
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => silent.close(resolve))
    })
    const port = (silent.address() as { port: number }).port
    const gateway = await startGateway({ connectors: { silent: mcp({ url: `http://127.0.0.1:${port}/mcp`, timeout: 2000 }) }, grants: everyone })
    cleanups.push(() => gateway.close())

    const { after, connector } = await watchStatus(gateway, "silent", (s) => s !== "connecting", 10_000)
    expect(connector.status).toBe("down")
    expect(connector.error).toMatch(/^not ready within 2s: no answer to server\/discover$/)
    expect(after).toBeLessThan(3_500)
  })

  it("over stdio (a process that reads and never writes) is down within its timeout, saying what it waited for", async () => {
    const gateway = await startGateway({
      connectors: { mute: stdio({ command: process.execPath, args: ["-e", "process.stdin.on(\"end\", () => process.exit(0)).resume()"], timeout: 2000 }) },
      grants: everyone
    })
    cleanups.push(() => gateway.close())

    const { after, connector } = await watchStatus(gateway, "mute", (s) => s !== "connecting", 10_000)
    expect(connector.status).toBe("down")
    // The probe on a sibling process went unanswered (legacy, then), then the handshake did.
    expect(connector.error).toMatch(/^not ready within 2s: no answer to initialize$/)
    expect(after).toBeLessThan(3_500)
  })
})
