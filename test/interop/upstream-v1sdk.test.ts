/**
 * The gateway in front of servers written with the v1 TypeScript SDK (`@modelcontextprotocol/sdk`),
 * sessionful and stateless, driven by both SDK clients.
 */
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { mcp } from "../../src/index.js"
import { eventually, startGateway, untilReady } from "../helpers/gateway.js"
import { fixtureFeatureTests, keepsNoSession } from "./fixtureFeatures.js"
import { startV1SdkServer, type V1SdkServer } from "./servers/v1SdkServer.js"
import { callersConfig, textOf } from "./upstreamCallers.js"

let stateful: V1SdkServer
let stateless: V1SdkServer
let gateway: RunningGateway
const directClients: Array<V1Client> = []

/** A v1 client straight to the upstream, answering what a client can. */
const directClient = async (server: V1SdkServer) => {
  const client = new V1Client({ name: "direct", version: "1" }, { capabilities: { sampling: {}, elicitation: { form: {} }, roots: {} } })
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", content: { type: "text", text: "direct" }, model: "m" }))
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: "direct" } }))
  client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: "file:///direct" }] }))
  directClients.push(client)
  await client.connect(new V1Transport(new URL(server.url)))
  return client
}

const direct = (server: () => V1SdkServer) => async (name: string, args: Record<string, unknown>) =>
  (await directClient(server())).callTool({ name, arguments: args })

/** Called directly, the stateless server cannot complete a tool that asks its client something. */
const failsDirectly = (tool: string) => async () => {
  const client = await directClient(stateless)
  const outcome = await client.callTool({ name: tool, arguments: { prompt: "hi" } }, undefined, { timeout: 2_000 }).then(
    (result) => textOf(result as never),
    (error: Error) => error.message
  )
  expect(outcome).not.toMatch(/direct/)
  expect(outcome).toMatch(/timed out|does not support/)
}

beforeAll(async () => {
  stateful = await startV1SdkServer({ stateless: false })
  stateless = await startV1SdkServer({ stateless: true })
  gateway = await startGateway({
    connectors: { sful: mcp({ url: stateful.url }), sless: mcp({ url: stateless.url }) },
    ...callersConfig
  })
  await untilReady(gateway, 2)
})

afterAll(async () => {
  for (const client of directClients) await client.close().catch(() => {})
  await gateway?.close()
  await stateful?.close()
  await stateless?.close()
})

describe("v1 sdk stateful", () => {
  fixtureFeatureTests(() => ({
    url: gateway.url,
    id: "sful",
    direct: direct(() => stateful),
    slowCounts: async () => ({ ...stateful.slow })
  }))
})

describe("v1 sdk stateless", () => {
  const peer = () => ({
    url: gateway.url,
    id: "sless",
    direct: direct(() => stateless),
    slowCounts: async () => ({ ...stateless.slow })
  })
  fixtureFeatureTests(peer, {
    // A stateless server gets the client's answer on a new POST, which a new server instance
    // (knowing nothing of the question, nor of the client's capabilities) receives.
    notApplicable: {
      sampling: { reason: "a stateless server never receives the answer", check: failsDirectly("ask_llm") },
      elicitation: { reason: "a stateless server never sees the client's capabilities", check: failsDirectly("ask_user") },
      "roots (two callers)": { reason: "a stateless server never receives the answer", check: failsDirectly("my_roots") },
      "session state (two callers)": { reason: "a stateless server keeps nothing between requests", check: keepsNoSession(peer) },
      cancellation: {
        reason: "a stateless server cannot match notifications/cancelled to its request",
        check: async () => {
          const client = await directClient(stateless)
          const before = { ...stateless.slow }
          const controller = new AbortController()
          const pending = client.callTool({ name: "slow", arguments: { seconds: 1 } }, undefined, { signal: controller.signal }).catch((e: Error) => e)
          await eventually(() => stateless.slow.started > before.started, 5_000)
          controller.abort()
          expect(await pending).toBeInstanceOf(Error)
          await eventually(() => stateless.slow.completed > before.completed, 5_000, "the call to run to its end")
          expect(stateless.slow.cancelled).toBe(before.cancelled)
        }
      }
    }
  })
})
