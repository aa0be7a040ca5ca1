/**
 * The custom plugin end to end: the example's own `aperture.config.ts`, loaded as users load
 * it, in front of an upstream that checks every signature.
 */
import { fileURLToPath } from "node:url"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Aperture, type RunningGateway } from "../../src/Aperture.js"
import { loadConfigFile } from "../../src/config/load.js"
import { startSignedUpstream, type SignedUpstream } from "./signedUpstream.js"

const configFile = fileURLToPath(new URL("./aperture.config.ts", import.meta.url))
const SECRET = `hmac-${crypto.randomUUID()}`

let upstream: SignedUpstream | undefined
let gateway: RunningGateway | undefined

afterEach(async () => {
  await gateway?.close()
  await upstream?.close()
  gateway = upstream = undefined
})

/** Starts the example's config against `target`, with `secret` in the environment. */
const startExample = async (target: SignedUpstream, secret: string) => {
  process.env["HMAC_SECRET"] = secret
  process.env["SIGNED_UPSTREAM_URL"] = target.url
  const config = await Effect.runPromise(loadConfigFile(configFile))
  return Aperture.start({ ...config, server: { ...config.server, port: 0 } })
}

const connector = async (running: RunningGateway) => {
  const response = await fetch(`${running.origin}/api/connectors`)
  const { connectors } = (await response.json()) as { connectors: Array<{ id: string; status: string; error?: string; auth_type: string }> }
  return connectors[0]!
}

const settled = async (running: RunningGateway) => {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const c = await connector(running)
    if (c.status !== "connecting") return c
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error("connector never left connecting")
}

describe("hmacSigned", () => {
  it("signs every request so the upstream accepts it", async () => {
    upstream = await startSignedUpstream({ keys: new Map([["example", SECRET]]) })
    gateway = await startExample(upstream, SECRET)
    expect(await settled(gateway)).toMatchObject({ id: "signed", status: "ready", auth_type: "hmac" })
    const client = new Client({ name: "t", version: "1" }, { versionNegotiation: { mode: "auto" } })
    await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url)))
    expect(await client.callTool({ name: "signed_echo", arguments: { message: "hi" } })).toMatchObject({
      content: [{ text: "signed echo: hi" }]
    })
    await client.close()
    expect(upstream.refusals).toEqual([])
    expect(upstream.accepted()).toBeGreaterThan(1)
  })

  it("corrects its clock when the upstream says the timestamp is off, and retries once", async () => {
    upstream = await startSignedUpstream({ keys: new Map([["example", SECRET]]), clockSkewSeconds: 3600 })
    gateway = await startExample(upstream, SECRET)
    expect(await settled(gateway)).toMatchObject({ status: "ready" })
    expect(upstream.refusals).toEqual(["timestamp"])
  })

  it("a wrong key is refused and not retried: the connector is misconfigured", async () => {
    upstream = await startSignedUpstream({ keys: new Map([["example", SECRET]]) })
    gateway = await startExample(upstream, "not-the-key")
    const state = await settled(gateway)
    expect(state.status).toBe("misconfigured")
    expect(state.error).toMatch(/HTTP 401/)
    expect(new Set(upstream.refusals)).toEqual(new Set(["signature"]))
    expect(JSON.stringify(state)).not.toContain("not-the-key")
  })
})
