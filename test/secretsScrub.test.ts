/**
 * Secrets an upstream itself puts in what it says: a stdio process printing its own env secret to
 * stderr (kept as its error text and logged line by line), and an HTTP upstream answering a call
 * with HTTP 200 and a JSON-RPC error that echoes the credential it was sent. Neither reaches a
 * log line, `/api/connectors` or the caller.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bearer } from "../plugins/auth/bearer.js"
import { grant, mcp, stdio } from "../src/config/dsl.js"
import { env } from "../src/config/secret.js"
import { startCapturingGateway } from "./helpers/capture.js"
import { connectorsOf, eventually } from "./helpers/gateway.js"
import { startJsonRpcErrorEchoer, writeLeakyStdio } from "./fixtures/echoingUpstreams.js"
import type { Front } from "./fixtures/front.js"
import { type ProtectedUpstream, startProtectedUpstream } from "./fixtures/protectedUpstream.js"

const stdioSecret = `planted-stdio-${crypto.randomUUID()}`
const bearerSecret = `planted-echoed-bearer-${crypto.randomUUID()}`
const envName = `APERTURE_TEST_STDIO_TOKEN_${process.pid}`

let dir: string
let leakyScript: string
let upstream: ProtectedUpstream
/** In front of the upstream: answers each tool call with HTTP 200 and a JSON-RPC error echoing its Authorization. */
let echoer: Front

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "aperture-scrub-"))
  leakyScript = writeLeakyStdio(dir)
  process.env[envName] = stdioSecret
  upstream = await startProtectedUpstream({ kind: "static", check: (r) => r.headers.get("authorization") === `Bearer ${bearerSecret}` })
  echoer = await startJsonRpcErrorEchoer(upstream.url)
})

afterAll(async () => {
  delete process.env[envName]
  await echoer?.close()
  await upstream?.close()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

const expectNoSecret = (what: string, text: string) => {
  for (const secret of [stdioSecret, bearerSecret]) {
    if (text.includes(secret)) throw new Error(`${what} contains a secret (${secret.slice(0, 22)}…):\n${text}`)
  }
}

describe("secrets an upstream echoes are scrubbed", () => {
  it("from a stdio process's stderr and an HTTP 200 JSON-RPC error", async () => {
    const gateway = await startCapturingGateway({
      connectors: {
        leaky: stdio({ command: process.execPath, args: [leakyScript], env: { TOKEN: env(envName) }, isolation: "shared" }),
        echo: mcp({ url: echoer.url, auth: bearer({ secret: bearerSecret }) })
      },
      grants: [grant({ src: ["local"], connectors: ["**"] })]
    })
    try {
      await eventually(async () => {
        const api = await connectorsOf(gateway)
        const byId = Object.fromEntries(api.connectors.map((c) => [c.id, c]))
        return byId["echo"]?.status === "ready" && byId["leaky"]?.error?.includes("stderr") === true
      }, 30_000, "echo ready and leaky down with its stderr")
      const leaky = (await connectorsOf(gateway)).connectors.find((c) => c.id === "leaky")!
      // The stderr is still told, with the secret taken out.
      expect(leaky.error).toContain("starting with token <redacted>")
      expect(leaky.error).toContain("no config here")

      const client = new Client({ name: "caller", version: "1" }, { versionNegotiation: { mode: "auto" } })
      await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url)))
      const answer = await client.callTool({ name: "echo_echo", arguments: { message: "hi" } }).then(
        (result) => ({ result }),
        (error: { message: string; data?: unknown }) => ({ message: error.message, data: error.data })
      )
      await client.close()
      const told = JSON.stringify(answer)
      // The upstream's error reached the caller, without the credential in it.
      expect(told).toContain("you sent authorization=<redacted>")
      expect(answer).toMatchObject({ data: { authorization: "<redacted>" } })
      expectNoSecret("the caller's error", told)

      // The upstream did get the credential (so the echo had it to give away).
      expect(JSON.stringify(upstream.requests)).toContain(bearerSecret)
      expectNoSecret("/api/connectors", JSON.stringify(await connectorsOf(gateway)))
      const logs = gateway.captured.logs.join("\n")
      // The stderr lines were logged, scrubbed.
      expect(logs).toContain("starting with token <redacted>")
      expectNoSecret("logs", logs)
      expectNoSecret("spans", gateway.captured.spans.join("\n"))
    } finally {
      await gateway.close()
    }
  })
})
