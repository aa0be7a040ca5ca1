/**
 * The gateway the client half of the interop matrix talks to: server-everything over stdio as
 * `everything`, and the v2-SDK fixture as `fx` (its `slow` tool counts the cancellations it
 * sees). Two callers, told apart by API key, so "each caller sees its own" can be checked.
 */
import type { RunningGateway } from "../../../src/Aperture.js"
import { apiKeys, grant, mcp } from "../../../src/index.js"
import { startV2Upstream, type V2Upstream } from "../../fixtures/v2Upstream.js"
import { everythingStdio, startGateway, untilReady } from "../../helpers/gateway.js"

export interface ClientsGateway {
  readonly gateway: RunningGateway
  readonly url: string
  readonly fx: V2Upstream
  readonly keys: { readonly alice: string; readonly bob: string }
  readonly close: () => Promise<void>
}

export const startClientsGateway = async (): Promise<ClientsGateway> => {
  const keys = { alice: `alice-${crypto.randomUUID()}`, bob: `bob-${crypto.randomUUID()}` }
  const fx = await startV2Upstream({ name: "fx" })
  const gateway = await startGateway({
    // A process per caller: server-everything keeps the roots it is given per session, and the
    // roots feature shows each caller its own (a shared process is told no roots at all).
    connectors: { everything: everythingStdio({ isolation: "caller" }), fx: mcp({ url: fx.url }) },
    identity: [apiKeys({ keys: { [keys.alice]: { login: "alice" }, [keys.bob]: { login: "bob" } } })],
    grants: [grant({ src: ["alice", "bob"], connectors: ["**"] })]
  })
  await untilReady(gateway, 2)
  return {
    gateway,
    url: gateway.url,
    fx,
    keys,
    close: async () => {
      await gateway.close()
      await fx.close()
    }
  }
}
