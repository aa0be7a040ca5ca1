/**
 * The authorization code machinery of per-user connectors (src/auth/userOAuthFlow.ts,
 * dynamicClient.ts) against a real authorization server (oidc-provider with PKCE required,
 * refresh tokens, RFC 7591 registration, RFC 7009 revocation), its login and consent pages
 * driven over HTTP: code flow for a confidential and a public client, PKCE enforced, state
 * refused when unknown, expired, reused or foreign, refresh and revoked refresh tokens, no
 * refresh token granted, discovery and registration, and no secret in any error.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Redacted, TestClock, TestContext } from "effect"
import { discover, register } from "../src/auth/dynamicClient.js"
import { inMemoryPendingAuthorizations, type PendingAuthorizations } from "../src/auth/pendingAuthorizations.js"
import { makePkce, s256Challenge } from "../src/auth/pkce.js"
import {
  begin,
  type BeginAuthorization,
  complete,
  makeSingleFlight,
  PendingAuthorizationStore,
  refresh,
  refuse,
  revoke,
  type GrantedTokens
} from "../src/auth/userOAuthFlow.js"
import type { UserGrant } from "../src/auth/userTokens.js"
import {
  authorizeHeadlessly,
  type OAuthCodeServer,
  type ProtectedResource,
  startOAuthCodeServer,
  startProtectedResource
} from "./fixtures/oauthCodeServer.js"

/** An endpoint that never answers (`silent`) or streams JSON-looking bytes forever (`endless`). */
const startMisbehavingEndpoint = async (kind: "silent" | "endless") => {
  let sent = 0
  const server = createServer((req, res) => {
    req.resume()
    if (kind === "silent") return
    res.writeHead(200, { "content-type": "application/json" })
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    const pump = () => {
      while (!res.destroyed && sent < 50 * 1024 * 1024) {
        sent += chunk.length
        if (!res.write(chunk)) return void res.once("drain", pump)
      }
    }
    res.write("{\"access_token\":\"")
    pump()
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/endpoint`,
    bytesSent: () => sent,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

let as: OAuthCodeServer
let resource: ProtectedResource
let resourceNoHint: ProtectedResource

beforeAll(async () => {
  as = await startOAuthCodeServer()
  resource = await startProtectedResource(as.issuer)
  resourceNoHint = await startProtectedResource(as.issuer, { hint: false })
})

afterAll(async () => {
  await resource?.close()
  await resourceNoHint?.close()
  await as?.close()
})

const run = <A, E>(effect: Effect.Effect<A, E, PendingAuthorizationStore>, store: PendingAuthorizations) =>
  Effect.runPromise(Effect.either(Effect.provide(effect, Layer.succeed(PendingAuthorizationStore, store))))

const startFor = (client: { readonly id: string }, overrides: Partial<BeginAuthorization> = {}): BeginAuthorization => ({
  login: "alice",
  connectorId: "github",
  authorizationUrl: as.authorizationUrl,
  tokenUrl: as.tokenUrl,
  clientId: client.id,
  redirectUri: as.redirectUri,
  scopes: ["read"],
  ...overrides
})

/** begin → login and consent at the provider → the code at the redirect. */
const authorize = async (store: PendingAuthorizations, request: BeginAuthorization) => {
  const started = await run(begin(request), store)
  if (Either.isLeft(started)) throw new Error(String(started.left))
  const redirect = await authorizeHeadlessly(started.right.authUrl, { login: request.login, redirectUri: request.redirectUri })
  return { started: started.right, redirect }
}

/** The secrets of a flow must appear in no error message. */
const expectNoSecretIn = (text: string, secrets: ReadonlyArray<string | undefined>) => {
  for (const secret of secrets) if (secret !== undefined) expect(text).not.toContain(secret)
}

/** The subject the provider knows an access token by (its introspection of the token). */
const tokenIsActive = async (token: string, client: { readonly id: string; readonly secret: string | undefined }) => {
  const body = new URLSearchParams({ token })
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" }
  if (client.secret === undefined) body.set("client_id", client.id)
  else headers["authorization"] = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString("base64")}`
  const answer = await fetch(`${as.issuer}/token/introspection`, { method: "POST", headers, body })
  return (await answer.json()) as { active: boolean; sub?: string }
}

describe("PKCE", () => {
  it("makes a 43-character base64url verifier from 32 random bytes and its S256 challenge", async () => {
    const a = await Effect.runPromise(makePkce)
    const b = await Effect.runPromise(makePkce)
    const verifier = Redacted.value(a.verifier)
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(verifier).not.toBe(Redacted.value(b.verifier))
    expect(a.method).toBe("S256")
    // RFC 7636 Appendix B.
    expect(s256Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).toBe("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    expect(a.challenge).toBe(s256Challenge(verifier))
    expect(String(a.verifier)).not.toContain(verifier)
  })
})

describe("authorization code flow", () => {
  it("a confidential client: begin → login and consent → complete gives Alice's tokens, bound to her", async () => {
    const store = inMemoryPendingAuthorizations()
    const request = startFor(as.clients.confidential, { resource: as.defaultResource })
    const { redirect, started } = await authorize(store, request)
    const url = new URL(started.authUrl)
    expect(url.searchParams.get("code_challenge_method")).toBe("S256")
    expect(url.searchParams.get("state")).toBe(started.state)
    expect(started.state.length).toBeGreaterThanOrEqual(43)
    expect(redirect.error).toBeUndefined()
    expect(redirect.state).toBe(started.state)
    const result = await run(
      complete({
        state: redirect.state!,
        code: redirect.code!,
        connectorId: "github",
        login: "alice",
        clientSecret: Redacted.make(as.clients.confidential.secret)
      }),
      store
    )
    if (Either.isLeft(result)) throw new Error(result.left.message)
    const tokens = result.right
    expect(tokens.login).toBe("alice")
    expect(tokens.refreshToken).toBeDefined()
    expect(tokens.expiresAt).toBeGreaterThan(Date.now())
    expect(tokens.scope).toContain("read")
    const introspected = await tokenIsActive(Redacted.value(tokens.accessToken), as.clients.confidential)
    expect(introspected).toMatchObject({ active: true, sub: "alice" })
    // What the flow grants is what the per-user store keeps.
    const stored: UserGrant = tokens
    expect(stored.refreshToken).toBe(tokens.refreshToken)
    // Tokens never print.
    expect(JSON.stringify(tokens)).not.toContain(Redacted.value(tokens.accessToken))
  })

  it("a public client (no secret): PKCE alone, client_id in the form", async () => {
    const store = inMemoryPendingAuthorizations()
    const { redirect } = await authorize(store, startFor(as.clients.public, { login: "bob" }))
    const result = await run(complete({ state: redirect.state!, code: redirect.code!, connectorId: "github", login: "bob" }), store)
    if (Either.isLeft(result)) throw new Error(result.left.message)
    expect(await tokenIsActive(Redacted.value(result.right.accessToken), as.clients.public)).toMatchObject({ active: true, sub: "bob" })
  })

  it("PKCE is enforced: the code with another verifier is refused (invalid_grant), and the message holds neither", async () => {
    const store = inMemoryPendingAuthorizations()
    let verifier = ""
    // A store that swaps the verifier, as an attacker holding the code but not the verifier would.
    const swapping: PendingAuthorizations = {
      put: (state, entry) => store.put(state, { ...entry, codeVerifier: Redacted.make((verifier = Redacted.value(entry.codeVerifier)).split("").reverse().join("")) }),
      claim: store.claim
    }
    const { redirect } = await authorize(swapping, startFor(as.clients.confidential))
    const result = await run(
      complete({ state: redirect.state!, code: redirect.code!, connectorId: "github", login: "alice", clientSecret: Redacted.make(as.clients.confidential.secret) }),
      swapping
    )
    expect(Either.isLeft(result)).toBe(true)
    const error = Either.getLeft(result).pipe((o) => o._tag === "Some" ? o.value : undefined)!
    expect(error._tag).toBe("CodeExchangeRejected")
    expect((error as { oauthError?: string }).oauthError).toBe("invalid_grant")
    expectNoSecretIn(error.message, [redirect.code, verifier, verifier.split("").reverse().join(""), as.clients.confidential.secret])
  })

  it("a wrong client secret is refused as invalid_client without the secret in the message", async () => {
    const store = inMemoryPendingAuthorizations()
    const { redirect } = await authorize(store, startFor(as.clients.confidential))
    const wrong = "wrong-secret-value-1234"
    const result = await run(
      complete({ state: redirect.state!, code: redirect.code!, connectorId: "github", clientSecret: Redacted.make(wrong) }),
      store
    )
    const error = Either.isLeft(result) ? result.left : undefined
    expect(error?._tag).toBe("CodeExchangeRejected")
    expect(error?.message).toMatch(/invalid_client.*check the client id and secret/)
    expectNoSecretIn(error!.message, [wrong, redirect.code])
  })

  it("no refresh token granted → NoRefreshToken, which says to ask for offline access", async () => {
    const store = inMemoryPendingAuthorizations()
    const { redirect } = await authorize(store, startFor(as.clients.noRefresh))
    const result = await run(
      complete({ state: redirect.state!, code: redirect.code!, connectorId: "github", clientSecret: Redacted.make(as.clients.noRefresh.secret) }),
      store
    )
    const error = Either.isLeft(result) ? result.left : undefined
    expect(error?._tag).toBe("NoRefreshToken")
    expect(error?.message).toBe(
      "misconfigured: the provider granted no refresh token; ask for offline access (scope offline_access) or enable refresh tokens for the client"
    )
  })
})

describe("authorization state", () => {
  it("an unknown state is refused before anything is sent to the provider", async () => {
    const store = inMemoryPendingAuthorizations()
    const result = await run(complete({ state: "made-up", code: "x", connectorId: "github" }), store)
    expect(Either.isLeft(result) && result.left._tag).toBe("AuthorizationStateUnknown")
  })

  it("a reused state is refused (single use), even after a successful completion", async () => {
    const store = inMemoryPendingAuthorizations()
    const { redirect } = await authorize(store, startFor(as.clients.public))
    const first = await run(complete({ state: redirect.state!, code: redirect.code!, connectorId: "github" }), store)
    expect(Either.isRight(first)).toBe(true)
    const second = await run(complete({ state: redirect.state!, code: redirect.code!, connectorId: "github" }), store)
    expect(Either.isLeft(second) && second.left._tag).toBe("AuthorizationStateUsed")
  })

  it("a state begun by Alice is refused for Bob, and for another connector; either spends it", async () => {
    const store = inMemoryPendingAuthorizations()
    const { redirect } = await authorize(store, startFor(as.clients.public))
    const bob = await run(complete({ state: redirect.state!, code: redirect.code!, connectorId: "github", login: "bob" }), store)
    expect(Either.isLeft(bob) && bob.left).toMatchObject({ _tag: "AuthorizationStateForeign", reason: "user" })
    expect(Either.isLeft(bob) && bob.left.message).toMatch(/started by another user/)
    const again = await run(complete({ state: redirect.state!, code: redirect.code!, connectorId: "github", login: "alice" }), store)
    expect(Either.isLeft(again) && again.left._tag).toBe("AuthorizationStateUsed")

    const other = await authorize(store, startFor(as.clients.public))
    const wrongConnector = await run(complete({ state: other.redirect.state!, code: other.redirect.code!, connectorId: "linear", login: "alice" }), store)
    expect(Either.isLeft(wrongConnector) && wrongConnector.left).toMatchObject({ _tag: "AuthorizationStateForeign", reason: "connector" })
  })

  it("a state is good for 15 minutes, then refused as expired", async () => {
    const store = inMemoryPendingAuthorizations()
    const after = (minutes: number) =>
      Effect.runPromise(
        Effect.gen(function*() {
          const started = yield* begin(startFor(as.clients.public))
          yield* TestClock.adjust(Duration.minutes(minutes))
          return yield* complete({ state: started.state, code: "not-a-real-code", connectorId: "github" })
        }).pipe(Effect.either, Effect.provide(Layer.succeed(PendingAuthorizationStore, store)), Effect.provide(TestContext.TestContext))
      )
    // Within the lifetime the state is accepted and the (bogus) code goes to the provider, which refuses it.
    const inTime = await after(14)
    expect(Either.isLeft(inTime) && inTime.left).toMatchObject({ _tag: "CodeExchangeRejected", oauthError: "invalid_grant" })
    const late = await after(15)
    expect(Either.isLeft(late) && late.left._tag).toBe("AuthorizationStateExpired")
    expect(Either.isLeft(late) && late.left.message).toMatch(/start connecting again/)
  })

  it("a user who declines at the provider: the state is spent and the refusal says to connect again", async () => {
    const store = inMemoryPendingAuthorizations()
    const started = await run(begin(startFor(as.clients.public)), store)
    if (Either.isLeft(started)) throw started.left
    const redirect = await authorizeHeadlessly(started.right.authUrl, { login: "alice", redirectUri: as.redirectUri, decline: true })
    expect(redirect.code).toBeUndefined()
    expect(redirect.error).toBe("access_denied")
    const refused = await run(
      refuse({ state: redirect.state!, error: redirect.error!, errorDescription: redirect.url.searchParams.get("error_description") ?? undefined, connectorId: "github", login: "alice" }),
      store
    )
    expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "AuthorizationDenied", oauthError: "access_denied" })
    expect(Either.isLeft(refused) && refused.left.message).toMatch(/declined.*connect again/)
    const reused = await run(refuse({ state: redirect.state!, error: "access_denied", connectorId: "github" }), store)
    expect(Either.isLeft(reused) && reused.left._tag).toBe("AuthorizationStateUsed")
  })

  it("the in-memory store is bounded: the oldest pending states are dropped first", async () => {
    const store = inMemoryPendingAuthorizations({ maxEntries: 3 })
    const states: Array<string> = []
    for (let i = 0; i < 5; i++) {
      const started = await run(begin(startFor(as.clients.public)), store)
      if (Either.isLeft(started)) throw started.left
      states.push(started.right.state)
    }
    const claims = await Promise.all(states.map((state) => Effect.runPromise(store.claim(state))))
    expect(claims.map((c) => c._tag)).toEqual(["Unknown", "Unknown", "Claimed", "Claimed", "Claimed"])
  })
})

/** Alice's tokens from a full flow with `client`. */
const connect = async (client: { readonly id: string; readonly secret: string | undefined }, login = "alice") => {
  const store = inMemoryPendingAuthorizations()
  const { redirect } = await authorize(store, startFor(client, { login }))
  const result = await run(
    complete({
      state: redirect.state!,
      code: redirect.code!,
      connectorId: "github",
      login,
      clientSecret: client.secret === undefined ? undefined : Redacted.make(client.secret)
    }),
    store
  )
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

const clientOf = (client: { readonly id: string; readonly secret: string | undefined }) => ({
  tokenUrl: as.tokenUrl,
  clientId: client.id,
  clientSecret: client.secret === undefined ? undefined : Redacted.make(client.secret)
})

const refreshOf = (client: { readonly id: string; readonly secret: string | undefined }, tokens: GrantedTokens) =>
  Effect.runPromise(Effect.either(refresh({ ...clientOf(client), refreshToken: tokens.refreshToken! })))

describe("refresh", () => {
  it("renews the access token (confidential and public clients)", async () => {
    for (const client of [as.clients.confidential, as.clients.public]) {
      const tokens = await connect(client)
      const renewed = await refreshOf(client, tokens)
      if (Either.isLeft(renewed)) throw new Error(renewed.left.message)
      expect(Redacted.value(renewed.right.accessToken)).not.toBe(Redacted.value(tokens.accessToken))
      expect(renewed.right.refreshToken).toBeDefined()
      expect(await tokenIsActive(Redacted.value(renewed.right.accessToken), client)).toMatchObject({ active: true, sub: "alice" })
    }
  })

  it("keeps the refresh token when the answer has none", async () => {
    const tokens = await connect(as.clients.confidential)
    as.omitRefreshTokenOnRefresh = true
    try {
      const renewed = await refreshOf(as.clients.confidential, tokens)
      if (Either.isLeft(renewed)) throw new Error(renewed.left.message)
      expect(Redacted.value(renewed.right.refreshToken!)).toBe(Redacted.value(tokens.refreshToken!))
    } finally {
      as.omitRefreshTokenOnRefresh = false
    }
  })

  it("a revoked refresh token → RefreshRejected (reconnect), with no token or secret in the message", async () => {
    const tokens = await connect(as.clients.confidential)
    const revoked = await Effect.runPromise(
      revoke({
        revocationEndpoint: as.revocationUrl,
        token: tokens.refreshToken!,
        tokenTypeHint: "refresh_token",
        clientId: as.clients.confidential.id,
        clientSecret: Redacted.make(as.clients.confidential.secret)
      })
    )
    expect(revoked).toBe(true)
    const renewed = await refreshOf(as.clients.confidential, tokens)
    const error = Either.isLeft(renewed) ? renewed.left : undefined
    expect(error?._tag).toBe("RefreshRejected")
    expect(error?.message).toMatch(/invalid_grant.*must connect again/)
    expectNoSecretIn(error!.message, [Redacted.value(tokens.refreshToken!), as.clients.confidential.secret])
  })

  it("a refresh with the wrong client secret is not RefreshRejected (the user is not at fault)", async () => {
    const tokens = await connect(as.clients.confidential)
    const wrong = "not-the-secret-98765"
    const renewed = await Effect.runPromise(
      Effect.either(refresh({ tokenUrl: as.tokenUrl, clientId: as.clients.confidential.id, clientSecret: Redacted.make(wrong), refreshToken: tokens.refreshToken! }))
    )
    const error = Either.isLeft(renewed) ? renewed.left : undefined
    expect(error?._tag).toBe("OAuthEndpointError")
    expect(error?.message).toMatch(/invalid_client/)
    expectNoSecretIn(error!.message, [wrong, Redacted.value(tokens.refreshToken!)])
  })

  it("single-flight: concurrent refreshes of one user's connector make one request, another user's runs apart", async () => {
    const singleFlight = makeSingleFlight<string, never>()
    let runs = 0
    const slow = (value: string) => Effect.as(Effect.zipRight(Effect.sync(() => runs++), Effect.sleep("50 millis")), value)
    const results = await Effect.runPromise(
      Effect.all([
        singleFlight("alice/github", slow("a1")),
        singleFlight("alice/github", slow("a2")),
        singleFlight("bob/github", slow("b"))
      ], { concurrency: "unbounded" })
    )
    expect(results).toEqual(["a1", "a1", "b"])
    expect(runs).toBe(2)
    // Done: the next call runs anew.
    expect(await Effect.runPromise(singleFlight("alice/github", slow("a3")))).toBe("a3")
  })
})

describe("revoke", () => {
  it("revokes an access token at the provider (RFC 7009); without a revocation endpoint it does nothing", async () => {
    const tokens = await connect(as.clients.public)
    const access = Redacted.value(tokens.accessToken)
    expect(await tokenIsActive(access, as.clients.public)).toMatchObject({ active: true })
    expect(await Effect.runPromise(revoke({ revocationEndpoint: undefined, token: tokens.accessToken, clientId: as.clients.public.id }))).toBe(false)
    expect(await tokenIsActive(access, as.clients.public)).toMatchObject({ active: true })
    expect(await Effect.runPromise(revoke({ revocationEndpoint: as.revocationUrl, token: tokens.accessToken, clientId: as.clients.public.id }))).toBe(true)
    expect(await tokenIsActive(access, as.clients.public)).toMatchObject({ active: false })
  })

  it("a revocation endpoint that never answers is given up on within its bound (5 s)", async () => {
    const silent = await startMisbehavingEndpoint("silent")
    try {
      const started = Date.now()
      const revoked = await Effect.runPromise(revoke({ revocationEndpoint: silent.url, token: Redacted.make("x"), clientId: as.clients.public.id }))
      expect(revoked).toBe(false)
      expect(Date.now() - started).toBeLessThan(7000)
    } finally {
      await silent.close()
    }
  })

  it("a token endpoint answering an endless body is read only up to the bound", async () => {
    const endless = await startMisbehavingEndpoint("endless")
    try {
      const renewed = await Effect.runPromise(
        Effect.either(refresh({ tokenUrl: endless.url, clientId: "c", refreshToken: Redacted.make("refresh-secret-abc") }))
      )
      expect(Either.isLeft(renewed) && renewed.left._tag).toBe("OAuthEndpointError")
      expect(Either.isLeft(renewed) && renewed.left.message).not.toContain("refresh-secret-abc")
      expect(endless.bytesSent()).toBeLessThan(10 * 1024 * 1024)
    } finally {
      await endless.close()
    }
  })
})

describe("dynamic client registration", () => {
  it("discovers the authorization server from the upstream's 401 hint, and from the well-known path without one", async () => {
    for (const upstream of [resource, resourceNoHint]) {
      const found = await Effect.runPromise(Effect.either(discover(upstream.url)))
      if (Either.isLeft(found)) throw new Error(found.left.message)
      expect(found.right).toMatchObject({
        resource: upstream.url,
        issuer: as.issuer,
        authorizationEndpoint: as.authorizationUrl,
        tokenEndpoint: as.tokenUrl,
        registrationEndpoint: as.registrationUrl,
        revocationEndpoint: as.revocationUrl
      })
    }
  })

  it("refuses metadata that names another resource (RFC 9728 §3.3)", async () => {
    const elsewhere = await startProtectedResource(as.issuer, { resource: "https://other.example/mcp" })
    try {
      const found = await Effect.runPromise(Effect.either(discover(elsewhere.url)))
      expect(Either.isLeft(found) && found.left._tag).toBe("DiscoveryFailed")
      expect(Either.isLeft(found) && found.left.message).toMatch(/names resource https:\/\/other\.example\/mcp, which does not cover/)
    } finally {
      await elsewhere.close()
    }
  })

  it("says where it looked when there is no authorization server", async () => {
    // The provider itself publishes no protected resource metadata, so its origin is taken as the
    // authorization server (the MCP fallback), which works; a path with nothing behind it does not.
    const found = await Effect.runPromise(Effect.either(discover("http://127.0.0.1:9/mcp")))
    expect(Either.isLeft(found) && found.left._tag).toBe("DiscoveryFailed")
    expect(Either.isLeft(found) && found.left.message).toMatch(/127\.0\.0\.1:9/)
  })

  it("registers a confidential and a public client (RFC 7591), and each completes the code flow", async () => {
    const found = await Effect.runPromise(discover(resource.url))
    for (const method of ["client_secret_basic", "none"] as const) {
      const registered = await Effect.runPromise(
        Effect.either(
          register({
            registrationEndpoint: found.registrationEndpoint!,
            redirectUri: "http://127.0.0.1:9/aperture/auth/dcr/callback",
            clientName: "Aperture test",
            scopes: ["read"],
            tokenEndpointAuthMethod: method
          })
        )
      )
      if (Either.isLeft(registered)) throw new Error(registered.left.message)
      const client = registered.right
      expect(client.clientSecret === undefined).toBe(method === "none")
      const store = inMemoryPendingAuthorizations()
      const request = startFor({ id: client.clientId }, {
        connectorId: "dcr",
        authorizationUrl: found.authorizationEndpoint,
        tokenUrl: found.tokenEndpoint,
        redirectUri: "http://127.0.0.1:9/aperture/auth/dcr/callback"
      })
      const { redirect } = await authorize(store, request)
      const done = await run(
        complete({ state: redirect.state!, code: redirect.code!, connectorId: "dcr", login: "alice", clientSecret: client.clientSecret }),
        store
      )
      if (Either.isLeft(done)) throw new Error(done.left.message)
      expect(done.right.refreshToken).toBeDefined()
    }
  })

  it("a refused registration says why", async () => {
    const refused = await Effect.runPromise(
      Effect.either(
        register({ registrationEndpoint: as.registrationUrl, redirectUri: "not a uri", clientName: "x", scopes: [] })
      )
    )
    expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "RegistrationFailed", oauthError: "invalid_redirect_uri" })
  })
})
