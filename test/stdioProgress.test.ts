/**
 * Progress from a stdio upstream reaches the caller whole and in order: every notification the
 * upstream sends before its result, before the result. server-everything's long-running
 * operation sends its last progress in the same stdout chunk as its result, which the SDK
 * client used to handle result first, losing that progress.
 */
import { afterAll, beforeAll, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant } from "../src/config/dsl.js"
import { connectV1, everythingStdio, startGateway, untilReady } from "./helpers/gateway.js"

let gateway: RunningGateway

beforeAll(async () => {
  gateway = await startGateway({ connectors: { everything: everythingStdio() }, grants: [grant({ src: ["local"], connectors: ["**"] })] })
  await untilReady(gateway, 1)
})

afterAll(async () => {
  await gateway?.close()
})

it("delivers all 4 progress notifications of each of 20 calls, in order, before the result", async () => {
  const { client, transport } = await connectV1(gateway.url)
  try {
    // What arrives on the wire, in order (the SDK client's own dispatch could reorder it again).
    const arrived: Array<string> = []
    const dispatch = transport.onmessage
    transport.onmessage = (message) => {
      const m = message as { method?: string; params?: { progress?: number; progressToken?: unknown }; id?: unknown; result?: unknown }
      if (m.method === "notifications/progress") arrived.push(`${String(m.params?.progressToken)} progress ${m.params?.progress}`)
      else if (m.result !== undefined) arrived.push(`${String(m.id)} result`)
      dispatch?.(message)
    }
    for (let call = 0; call < 20; call++) {
      arrived.length = 0
      const reported: Array<number> = []
      const result = await client.callTool(
        { name: "everything_trigger-long-running-operation", arguments: { duration: 0.2, steps: 4 } },
        undefined,
        { onprogress: (progress) => void reported.push(progress.progress) }
      )
      expect(result.content).toEqual([{ type: "text", text: "Long running operation completed. Duration: 0.2 seconds, Steps: 4." }])
      const token = arrived.find((line) => line.includes("progress"))?.split(" ")[0]
      expect(arrived, `call ${call}`).toEqual([1, 2, 3, 4].map((n) => `${token} progress ${n}`).concat(`${token} result`))
      expect(reported, `call ${call}`).toEqual([1, 2, 3, 4])
    }
  } finally {
    await client.close()
  }
})
