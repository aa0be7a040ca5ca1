/**
 * describeError says a network failure in plain words, for the errors upstream requests really
 * raise: a closed port, a name that does not resolve, TLS servers with certificates that are not
 * trusted or for another name, a plain-HTTP server on an https URL, a connection closed or reset,
 * an answer that never comes.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer as createHttpServer } from "node:http"
import { createServer as createHttpsServer } from "node:https"
import { type AddressInfo, createServer as createTcpServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Agent, request } from "undici"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort } from "../../test/helpers/processes.js"
import { describeError } from "./UpstreamError.js"
import { upstreamFetch } from "../upstream/upstreamFetch.js"

const servers: Array<Server> = []
const listen = async <S extends Server>(server: S): Promise<number> => {
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return (server.address() as AddressInfo).port
}

let certificate: { key: Buffer; cert: Buffer }
const dir = mkdtempSync(join(tmpdir(), "aperture-tls-"))
beforeAll(() => {
  // A self-signed certificate for the name `localhost`, made for this run.
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost", "-days", "1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")
  ], { stdio: "ignore" })
  certificate = { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }
})
afterAll(async () => {
  for (const server of servers) server.close()
  rmSync(dir, { recursive: true, force: true })
})

/** The error the gateway's upstream fetch fails with, wrapped as the MCP SDK wraps it. */
const failureOf = async (url: string, via: (url: string) => Promise<unknown> = (u) => upstreamFetch(u, { method: "POST", body: "{}" })) => {
  const error = await via(url).then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(Error)
  return new Error(`Version negotiation probe failed: ${(error as Error).message}`, { cause: error })
}

describe("describeError on network failures", () => {
  it("a closed port: connection refused, with the address", async () => {
    const port = await freePort()
    expect(describeError(await failureOf(`http://127.0.0.1:${port}/mcp`))).toBe(
      `connection refused (127.0.0.1:${port}): nothing is listening there`
    )
  })

  it("a name that does not resolve: unreachable, DNS name not found", async () => {
    expect(describeError(await failureOf("http://aperture-test.invalid/mcp"))).toBe(
      "unreachable: DNS name not found (aperture-test.invalid)"
    )
  })

  it("TLS: a self-signed certificate, one for another name, and plain HTTP on an https URL", async () => {
    const tlsPort = await listen(createHttpsServer(certificate, (_request, response) => response.end("{}")))
    expect(describeError(await failureOf(`https://localhost:${tlsPort}/mcp`))).toBe(
      "TLS problem: the certificate is self-signed and not trusted"
    )
    // Trusted, but asked for by an address it does not name.
    const trusting = new Agent({ connect: { ca: certificate.cert } })
    const viaTrusting = (url: string) => request(url, { dispatcher: trusting })
    expect((await request(`https://localhost:${tlsPort}/`, { dispatcher: trusting })).statusCode).toBe(200)
    expect(describeError(await failureOf(`https://127.0.0.1:${tlsPort}/mcp`, viaTrusting))).toMatch(
      /^TLS problem: the certificate is for another host name \(.*127\.0\.0\.1.*\)$/
    )
    await trusting.close()
    const plainPort = await listen(createHttpServer((_request, response) => response.end("{}")))
    expect(describeError(await failureOf(`https://127.0.0.1:${plainPort}/mcp`))).toBe(
      "TLS problem: the upstream does not speak TLS there (an http:// URL?)"
    )
  })

  it("a connection closed or reset before the answer", async () => {
    const closing = await listen(createTcpServer((socket) => socket.destroy()))
    expect(describeError(await failureOf(`http://127.0.0.1:${closing}/mcp`))).toBe(
      "connection reset: the upstream closed the connection before answering"
    )
    const resetting = await listen(createTcpServer((socket) => socket.once("data", () => socket.resetAndDestroy())))
    expect(describeError(await failureOf(`http://127.0.0.1:${resetting}/mcp`))).toMatch(/^connection reset/)
  })

  it("an answer that never comes: timed out", async () => {
    const silent = await listen(createTcpServer(() => {}))
    const impatient = new Agent({ headersTimeout: 200 })
    const error = await failureOf(`http://127.0.0.1:${silent}/mcp`, (url) => request(url, { dispatcher: impatient }))
    expect(describeError(error)).toBe("timed out waiting for the upstream's answer")
    await impatient.close()
  })

  it("leaves other errors as they were", () => {
    expect(describeError(new Error("outer", { cause: new Error("inner") }))).toBe("outer: inner")
    expect(describeError(Object.assign(new Error("spawn npx ENOENT"), { code: "ENOENT" }))).toBe("spawn npx ENOENT")
  })
})
