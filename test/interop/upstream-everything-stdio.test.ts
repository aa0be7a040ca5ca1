/**
 * The gateway in front of the official server-everything over stdio (a process the gateway
 * starts), driven by both SDK clients.
 */
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, beforeAll, describe } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { everythingStdio, startGateway, untilReady } from "../helpers/gateway.js"
import { everythingEntry } from "../helpers/processes.js"
import { everythingFeatureTests } from "./everythingFeatures.js"
import { KNOWN_EVERYTHING } from "./knownIssues.js"
import { callersConfig } from "./upstreamCallers.js"

let gateway: RunningGateway
const directClients: Array<V1Client> = []

beforeAll(async () => {
  // evs with one process for everyone; evsc as configured by default (a process per caller), for
  // what a shared session cannot keep apart (server-everything caches each session's roots).
  gateway = await startGateway({ connectors: { evs: everythingStdio({ isolation: "shared" }), evsc: everythingStdio() }, ...callersConfig })
  await untilReady(gateway, 2)
})

afterAll(async () => {
  for (const client of directClients) await client.close().catch(() => {})
  await gateway?.close()
})

describe("everything stdio", () => {
  everythingFeatureTests(() => ({
    url: gateway.url,
    id: "evs",
    isolatedId: "evsc",
    direct: async (name, args) => {
      const client = new V1Client({ name: "direct", version: "1" })
      directClients.push(client)
      await client.connect(new StdioClientTransport({ command: process.execPath, args: [everythingEntry, "stdio"], stderr: "ignore" }))
      return client.callTool({ name, arguments: args })
    }
  }), { known: KNOWN_EVERYTHING["everything stdio"] })
})
