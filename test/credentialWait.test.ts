/**
 * The wait for a credential is part of the call (issue 18, hole 7): against a real OAuth 2.0
 * authorization server (oidc-provider) whose token endpoint answers slowly, a call waiting for a
 * token fails within the connector's timeout, saying it was the credential; a caller cancelling
 * ends only its own wait, and the one token request goes on for the callers still waiting.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { clientCredentials } from "../plugins/auth/clientCredentials.js"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, http, mcp } from "../src/config/dsl.js"
import { type Captured, startCapturingGateway } from "./helpers/capture.js"
import { connectorsOf, connectV1, connectV2, errorOf, eventually } from "./helpers/gateway.js"
import { type OAuthServer, startOAuthServer } from "./fixtures/oauthServer.js"
import { type ProtectedUpstream, startProtectedUpstream } from "./fixtures/protectedUpstream.js"

/** Tokens live 2 s: refreshed 1.8 s after they are issued, so a test can make the next one wait. */
const TOKEN_TTL_SECONDS = 2

let as: OAuthServer
let upstream: ProtectedUpstream
let gateway: RunningGateway & { readonly captured: Captured }
/** The gateway's audit log: a call's line is written when the call ends at the gateway. */
const auditDir = mkdtempSync(join(tmpdir(), "aperture-credential-wait-"))
const auditFile = join(auditDir, "audit.jsonl")
const auditLines = (): Array<Record<string, unknown>> => {
  let text = ""
  try {
    text = readFileSync(auditFile, "utf8")
  } catch {
    return []
  }
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as Record<string, unknown>)
}

/**
 * In front of the token endpoint: `/<connector>/token` is forwarded to the real one, held first
 * while that connector's gate is set. Counts token requests, and those the gateway gave up on.
 */
let tokenFront: Server
const gates = new Map<string, { readonly opened: Promise<void>; readonly open: () => void }>()
const seen = new Map<string, { requests: number; abandoned: number }>()

const hold = (connector: string) => {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  gates.set(connector, { opened, open })
  return () => {
    gates.delete(connector)
    open()
  }
}

const readBody = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks)))
  })

beforeAll(async () => {
  as = await startOAuthServer({ ttlSeconds: TOKEN_TTL_SECONDS })
  upstream = await startProtectedUpstream({ kind: "oauth", issuer: as.issuer, jwksUrl: as.jwksUrl })
  tokenFront = createServer(async (req, res) => {
    const connector = req.url?.split("/")[1] ?? ""
    const counts = seen.get(connector) ?? { requests: 0, abandoned: 0 }
    seen.set(connector, counts)
    counts.requests++
    let answered = false
    res.on("close", () => {
      if (!answered) counts.abandoned++
    })
    const body = await readBody(req)
    await gates.get(connector)?.opened
    const answer = await fetch(as.tokenUrl, {
      method: "POST",
      headers: Object.fromEntries(
        Object.entries(req.headers).filter(([name]) => ["authorization", "content-type", "accept"].includes(name))
      ) as Record<string, string>,
      body: body.toString("utf8")
    })
    const text = await answer.text()
    answered = true
    res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" })
    res.end(text)
  })
  await new Promise<void>((resolve) => tokenFront.listen(0, "127.0.0.1", resolve))
  const front = `http://127.0.0.1:${(tokenFront.address() as AddressInfo).port}`
  const auth = (connector: string) =>
    clientCredentials({
      tokenUrl: `${front}/${connector}/token`,
      clientId: as.clients.basic.id,
      clientSecret: as.clients.basic.secret,
      resource: upstream.url
    })
  gateway = await startCapturingGateway({
    connectors: {
      // A short timeout, for a call that must not wait longer for its token.
      quick: mcp({ url: upstream.url, timeout: 1500, auth: auth("quick") }),
      // A long one, so that a call can wait for its token as long as the test holds it.
      patient: mcp({ url: upstream.url, timeout: 20_000, auth: auth("patient") }),
      // An HTTP connector: a proxied request waits for its token within the same kind of bound.
      proxied: http({ url: new URL("/", upstream.url).href, timeout: 1500, allowPrivate: true, auth: auth("proxied") })
    },
    grants: [grant({ src: ["local"], connectors: ["**"] })],
    audit: { to: { file: auditFile } }
  })
  await eventually(async () => (await connectorsOf(gateway)).connectors.every((c) => c.status === "ready"), 15_000, "both ready")
}, 30_000)

afterAll(async () => {
  for (const gate of [...gates.values()]) gate.open()
  await gateway?.close()
  tokenFront?.closeAllConnections()
  await new Promise<void>((resolve) => (tokenFront === undefined ? resolve() : tokenFront.close(() => resolve())))
  await upstream?.close()
  await as?.close()
  rmSync(auditDir, { recursive: true, force: true })
})

/** Waits until the connector's token is due for refresh, with its next token request held. */
const heldAfterExpiry = async (connector: string) => {
  const release = hold(connector)
  await new Promise((resolve) => setTimeout(resolve, TOKEN_TTL_SECONDS * 1000 + 200))
  return release
}

describe("a call waiting for its connector's token", () => {
  it("fails within the connector's timeout, saying the credential was not ready (not the 30 s token request timeout)", async () => {
    const release = await heldAfterExpiry("quick")
    const client = await connectV2(gateway.url)
    try {
      const started = Date.now()
      const error = await errorOf(client.callTool({ name: "quick_echo", arguments: { message: "hi" } }))
      const took = Date.now() - started
      expect(took).toBeGreaterThanOrEqual(1400)
      expect(took).toBeLessThan(1500 + 1500)
      expect(error.message).toMatch(/connector quick: its credential was not ready within 1s 500ms \(the token endpoint did not answer in time\)/)
      expect(error.message).not.toContain(as.clients.basic.secret)
      // The token request itself was still waited for (single-flight, not abandoned by the call).
      expect(seen.get("quick")?.abandoned ?? 0).toBe(0)
      release()
      // Once the token endpoint answers, calls go through again.
      await eventually(async () => {
        const result = await client.callTool({ name: "quick_echo", arguments: { message: "again" } }).catch(() => undefined)
        return result?.isError !== true && JSON.stringify(result?.content).includes("echo: again")
      }, 10_000, "a call after the token arrived")
    } finally {
      release()
      await client.close()
    }
  }, 15_000)

  it("cancelled by its caller, stops waiting at once; another caller waiting for the same token gets its answer when it comes", async () => {
    const release = await heldAfterExpiry("patient")
    const before = seen.get("patient")?.requests ?? 0
    const cancelling = await connectV1(gateway.url)
    const waiting = await connectV2(gateway.url)
    try {
      const toolRunsBefore = upstream.toolRuns()
      const second = waiting.callTool({ name: "patient_echo", arguments: { message: "second" } })
      const controller = new AbortController()
      const first = cancelling.client.callTool({ name: "patient_count", arguments: {} }, undefined, { signal: controller.signal })
      await new Promise((resolve) => setTimeout(resolve, 300))
      const abortedAt = Date.now()
      controller.abort(new Error("the caller gave up"))
      await expect(first).rejects.toThrow()
      // The gateway ended the call too (its audit line is written), long before the token comes.
      const ended = await eventually(
        () => auditLines().find((line) => line["exposed"] === "patient_count"),
        1_000,
        "the cancelled call's audit line"
      )
      expect(Date.now() - abortedAt).toBeLessThan(1_000)
      expect(ended["outcome"]).toMatch(/cancelled|error/)
      // Still waiting for the token (held): the second call has no answer yet.
      const early = await Promise.race([second.then(() => "answered"), new Promise((resolve) => setTimeout(() => resolve("waiting"), 500))])
      expect(early).toBe("waiting")
      release()
      expect(await second).toMatchObject({ content: [{ type: "text", text: "echo: second" }] })
      // One token request, not abandoned when the first caller gave up, nor made again for the second.
      expect((seen.get("patient")?.requests ?? 0) - before).toBe(1)
      expect(seen.get("patient")?.abandoned ?? 0).toBe(0)
      // The cancelled call never reached the upstream, even once the token arrived.
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(upstream.toolRuns()).toBe(toolRunsBefore)
    } finally {
      release()
      await cancelling.client.close()
      await waiting.close()
    }
  }, 15_000)

  it("through the HTTP proxy, fails within the connector's timeout with 502 credential_unavailable naming the wait", async () => {
    const proxied = `${gateway.origin}/v1/connectors/proxied/anything`
    // The first request fetches a token unheld: the credential works.
    const first = await fetch(proxied)
    expect(first.status).not.toBe(502)
    await first.arrayBuffer()
    const requestsBefore = seen.get("proxied")?.requests ?? 0
    const release = await heldAfterExpiry("proxied")
    try {
      const started = Date.now()
      const late = await fetch(proxied)
      const took = Date.now() - started
      expect(late.status).toBe(502)
      expect(await late.json()).toMatchObject({
        error: "credential_unavailable",
        connector: "proxied",
        message: "connector proxied: its credential was not ready within 1500 ms (the connector's timeout); the request was not sent"
      })
      expect(took).toBeGreaterThanOrEqual(1400)
      expect(took).toBeLessThan(1500 + 1500)
      // One token request, still held (not abandoned by the request that gave up).
      expect(seen.get("proxied")?.requests).toBe(requestsBefore + 1)
      expect(seen.get("proxied")?.abandoned).toBe(0)
    } finally {
      release()
    }
  }, 15_000)
})
