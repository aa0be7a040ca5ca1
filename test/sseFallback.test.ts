/**
 * The legacy-SSE fallback against server-everything in SSE mode: the connector comes up once
 * and stays up (the failed streamable-HTTP attempt's close used to end the SSE connection's
 * session ~10 ms after `ready`: ready → down → ready on every start).
 */
import { afterAll, beforeAll, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, mcp } from "../src/config/dsl.js"
import { connectorsOf, connectV1, startGateway } from "./helpers/gateway.js"
import { everythingSse, freePort, type Spawned } from "./helpers/processes.js"

let upstream: Spawned
let gateway: RunningGateway | undefined
let port: number

beforeAll(async () => {
  port = await freePort()
  upstream = everythingSse(port)
  await upstream.waitFor(/listening|running|port/i)
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.kill()
})

it("comes up over legacy SSE once, and never goes down after ready", async () => {
  gateway = await startGateway({
    connectors: { old: mcp({ url: `http://127.0.0.1:${port}/sse` }) },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  })
  // Every status the connector shows in its first 2 s, polled as fast as the admin API answers.
  const seen: Array<string> = []
  const until = Date.now() + 2_000
  while (Date.now() < until) {
    const connector = (await connectorsOf(gateway)).connectors.find((c) => c.id === "old")
    const status = `${connector?.status}${connector?.error ? `: ${connector.error}` : ""}`
    if (seen.at(-1) !== status) seen.push(status)
  }
  // A flap shows as `down: connection closed` for the reconnect delay (~200 ms), between a
  // first `ready` too brief to poll and the next.
  expect(seen.filter((status) => status !== "connecting"), `statuses: ${seen.join(" → ")}`).toEqual(["ready"])

  const { client } = await connectV1(gateway.url)
  try {
    expect(await client.callTool({ name: "old_echo", arguments: { message: "over sse" } })).toMatchObject({
      content: [{ type: "text", text: "Echo: over sse" }]
    })
  } finally {
    await client.close()
  }
})
