/**
 * The gateway in front of the official server-everything over streamable HTTP (its own
 * `streamableHttp` mode), driven by both SDK clients.
 */
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterAll, beforeAll, describe } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { mcp } from "../../src/index.js"
import { startGateway, untilReady } from "../helpers/gateway.js"
import { everythingEntry, freePort, spawnProcess, type Spawned } from "../helpers/processes.js"
import { everythingFeatureTests } from "./everythingFeatures.js"
import { KNOWN_EVERYTHING } from "./knownIssues.js"
import { callersConfig } from "./upstreamCallers.js"

let everything: Spawned
let upstreamUrl: string
let gateway: RunningGateway
const directClients: Array<V1Client> = []

beforeAll(async () => {
  const port = await freePort()
  everything = spawnProcess(process.execPath, [everythingEntry, "streamableHttp"], { PORT: String(port) })
  await everything.waitFor(/listening on port/)
  upstreamUrl = `http://127.0.0.1:${port}/mcp`
  gateway = await startGateway({ connectors: { evh: mcp({ url: upstreamUrl }) }, ...callersConfig })
  await untilReady(gateway, 1)
})

afterAll(async () => {
  for (const client of directClients) await client.close().catch(() => {})
  await gateway?.close()
  await everything?.kill()
})

describe("everything http", () => {
  everythingFeatureTests(() => ({
    url: gateway.url,
    id: "evh",
    direct: async (name, args) => {
      const client = new V1Client({ name: "direct", version: "1" })
      directClients.push(client)
      await client.connect(new V1Transport(new URL(upstreamUrl)))
      return client.callTool({ name, arguments: args })
    }
  }), { known: KNOWN_EVERYTHING["everything http"] })
})
