/**
 * The custom plugin end to end: the example's own `aperture.config.ts`, loaded as users load
 * it, in front of an upstream that checks every signature.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Aperture, loadConfigFile, type RunningGateway } from "../../src/Aperture.js"
import { grant, http, loopback } from "../../src/index.js"
import { hmacSigned, verifySignature } from "./hmacSigned.js"
import { startSignedUpstream, type SignedUpstream } from "./signedUpstream.js"

const configFile = fileURLToPath(new URL("./aperture.config.ts", import.meta.url))
const SECRET = `hmac-${crypto.randomUUID()}`

let upstream: SignedUpstream | undefined
let gateway: RunningGateway | undefined
let api: Server | undefined

afterEach(async () => {
  await gateway?.close()
  await upstream?.close()
  await new Promise((resolve) => api === undefined ? resolve(undefined) : api.close(resolve))
  gateway = upstream = api = undefined
})

/** A plain node:http API that checks each request's signature over the body it received. */
const startSignedApi = async () => {
  const verdicts: Array<{ readonly method: string; readonly body: string; readonly ok: boolean }> = []
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      const headers = new Headers()
      for (const [name, value] of Object.entries(request.headers)) if (typeof value === "string") headers.set(name, value)
      const url = new URL(request.url ?? "/", `http://${request.headers.host}`)
      const verdict = verifySignature(new Map([["example", SECRET]]), { method: request.method ?? "GET", url, headers, body }, Math.floor(Date.now() / 1000))
      verdicts.push({ method: request.method ?? "GET", body, ok: verdict.ok })
      response.writeHead(verdict.ok ? 200 : 401, { "content-type": "application/json" })
      response.end(JSON.stringify(verdict))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, verdicts }
}

/** Starts the example's config against `target`, with `secret` in the environment. */
const startExample = async (target: SignedUpstream, secret: string) => {
  process.env["HMAC_SECRET"] = secret
  process.env["SIGNED_UPSTREAM_URL"] = target.url
  const config = await Effect.runPromise(loadConfigFile(configFile))
  return Aperture.start({ ...config, server: { ...config.server, port: 0 } })
}

/** Starts a signed API and a gateway whose HTTP connector `api` signs with the example's plugin. */
const startSignedApiGateway = async () => {
  const signedApi = await startSignedApi()
  api = signedApi.server
  gateway = await Aperture.start({
    connectors: { api: http({ url: `${signedApi.origin}/api`, allowPrivate: true, auth: hmacSigned({ keyId: "example", secret: SECRET }) }) },
    identity: [loopback({ login: "local" })],
    grants: [grant({ src: ["local"], connectors: ["api/**"] })],
    server: { port: 0 }
  })
  return { signedApi, gateway }
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

  it("signs a proxied POST over the body it forwards (an HTTP connector)", async () => {
    const { signedApi, gateway } = await startSignedApiGateway()
    const body = JSON.stringify({ note: "signed body" })
    const post = await fetch(`${gateway.origin}/v1/connectors/api/notes`, { method: "POST", headers: { "content-type": "application/json" }, body })
    expect(post.status).toBe(200)
    const get = await fetch(`${gateway.origin}/v1/connectors/api/notes`)
    expect(get.status).toBe(200)
    expect(signedApi.verdicts).toEqual([{ method: "POST", body, ok: true }, { method: "GET", body: "", ok: true }])
  })

  it("refuses to sign a POST body that streams, instead of signing it as empty", async () => {
    const { signedApi, gateway } = await startSignedApiGateway()
    // No Content-Length (chunked): the proxy streams the body rather than read it whole.
    const chunked = new ReadableStream<Uint8Array>({
      start: (controller) => {
        controller.enqueue(new TextEncoder().encode("streamed"))
        controller.close()
      }
    })
    const post = await fetch(`${gateway.origin}/v1/connectors/api/notes`, { method: "POST", body: chunked, duplex: "half" } as RequestInit)
    expect(post.status).toBe(502)
    expect(await post.text()).toMatch(/cannot sign a request body that streams/)
    expect(signedApi.verdicts).toEqual([])
  })
})
