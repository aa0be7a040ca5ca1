/**
 * `npx tsx bench/identity.ts`: what identifying a caller costs per request, plugin by plugin,
 * through the same `Identities` service `/v1/mcp` uses — a JWT verified once and then served
 * from the cache, an uncached JWT verification for comparison, an API key, loopback.
 * In-process, no network on the measured path (the JWKS is fetched once, before timing).
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Layer } from "effect"
import { exportJWK, generateKeyPair, SignJWT } from "jose"
import { decodeConfig } from "../src/Aperture.js"
import { GatewayConfig } from "../src/config/GatewayConfig.js"
import { Identities } from "../src/identity/Identities.js"
import type { CallerRequest } from "../src/plugin/IdentityPlugin.js"
import { apiKeys, jwt, loopback } from "../src/index.js"

const { privateKey, publicKey } = await generateKeyPair("RS256")
const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" }] }
const server = createServer((_req, res) => res.end(JSON.stringify(jwks)))
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`
const issuer = "https://idp.example.com"
const audience = "https://aperture.example.com/v1/mcp"

const sign = (sub: string) =>
  new SignJWT({ groups: ["eng"] })
    .setProtectedHeader({ alg: "RS256", kid: "k1" })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(privateKey)

const KEY = "bench-key-0123456789abcdef"
const config = await Effect.runPromise(decodeConfig({
  identity: [
    apiKeys({ keys: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${KEY}-${i}`, { login: `user${i}` }])) }),
    jwt({ issuer, audience, jwksUrl }),
    loopback({ login: "local" })
  ]
}))
const identities = await Effect.runPromise(
  Effect.scoped(Layer.build(Identities.Default.pipe(Layer.provide(Layer.succeed(GatewayConfig, config))))).pipe(
    Effect.map((context) => context.unsafeMap.get(Identities.key) as Identities)
  )
)

const request = (headers: Record<string, string>, remoteAddress = "203.0.113.7"): CallerRequest => ({
  remoteAddress,
  headers,
  url: new URL("http://127.0.0.1:8080/v1/mcp")
})
const identify = (r: CallerRequest) => Effect.runPromise(identities.identify(r))

/** Runs `n` identifications inside one fiber, as `/v1/mcp` does (it yields `identify` in its handler). */
const measure = async (label: string, n: number, requestOf: (i: number) => CallerRequest) => {
  const loop = (count: number) =>
    Effect.gen(function*() {
      for (let i = 0; i < count; i++) yield* identities.identify(requestOf(i))
    })
  await Effect.runPromise(loop(Math.min(n, 200))) // warm up
  const start = process.hrtime.bigint()
  await Effect.runPromise(loop(n))
  const perCall = Number(process.hrtime.bigint() - start) / n / 1000
  console.log(`${label.padEnd(44)} ${perCall.toFixed(2).padStart(8)} µs/request`)
}

const token = await sign("alice")
await identify(request({ authorization: `Bearer ${token}` })) // fetches the JWKS, caches the token
const fresh = await Promise.all(Array.from({ length: 2000 }, (_, i) => sign(`user-${i}`)))

console.log(`node ${process.version}; Identities.identify, plugins [apiKeys (20 keys), jwt, loopback]`)
const local = request({}, "127.0.0.1")
const keyed = request({ "x-api-key": `${KEY}-7` })
const bearer = request({ authorization: `Bearer ${token}` })
await measure("loopback (after two plugins decline)", 100_000, () => local)
await measure("apiKeys, X-API-Key (SHA-256 + 20 compares)", 100_000, () => keyed)
await measure("jwt, cached token", 100_000, () => bearer)
await measure("jwt, new token each time (RS256 verify)", fresh.length, (i) => request({ authorization: `Bearer ${fresh[i]}` }))
server.close()
