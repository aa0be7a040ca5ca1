/**
 * A call's event stream after its answer (`upstreamCall`): the gateway reads the rest of it
 * rather than destroying it at the answer, so a stream that stays open must neither hold the
 * answer back nor stay open for ever.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, mcp } from "../src/index.js"
import { type Front, startFront } from "./fixtures/front.js"
import { startV1Upstream, type V1Upstream } from "./fixtures/v1Upstream.js"
import { connectV1, eventually, startGateway, untilReady } from "./helpers/gateway.js"

let upstream: V1Upstream
let front: Front
let gateway: RunningGateway
/** The front's answers to calls: when their stream was closed (by the gateway), if it was. */
const heldStreams: Array<{ closedAt: number | undefined }> = []

beforeAll(async () => {
  upstream = await startV1Upstream("held")
  // Passes a call on to the v1 SDK server and relays its event stream, but never ends it.
  front = await startFront(() => upstream.url, (req, body, res) => {
    if (!(req.method === "POST" && body.includes("\"tools/call\""))) return false
    const held = { closedAt: undefined as number | undefined }
    heldStreams.push(held)
    res.on("close", () => void (held.closedAt = Date.now()))
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string" && name !== "host" && name !== "content-length") headers[name] = value
    }
    void (async () => {
      const answer = await fetch(upstream.url, { method: "POST", headers, body })
      res.writeHead(answer.status, Object.fromEntries(answer.headers))
      const reader = answer.body!.getReader()
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) res.write(chunk.value)
    })()
    return true
  })
  gateway = await startGateway({
    connectors: { held: mcp({ url: front.url }) },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  })
  await untilReady(gateway, 1)
})

afterAll(async () => {
  await gateway?.close()
  await front?.close()
  await upstream?.close()
})

describe("a call's event stream that stays open after the answer", () => {
  it("answers at once, and the gateway closes the stream itself soon after", async () => {
    const { client } = await connectV1(gateway.url)
    try {
      const started = Date.now()
      const result = await client.callTool({ name: "held_hello", arguments: { who: "ann" } })
      const answeredAt = Date.now()
      expect(result.content).toEqual([{ type: "text", text: "hello ann from held" }])
      expect(answeredAt - started).toBeLessThan(900)
      expect(heldStreams).toHaveLength(1)
      const closedAt = await eventually(() => heldStreams[0]!.closedAt, 10_000, "the held stream closed")
      expect(closedAt - answeredAt).toBeLessThan(5_000)
    } finally {
      await client.close()
    }
  })
})
