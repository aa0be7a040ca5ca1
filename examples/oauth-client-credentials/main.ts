/**
 * OAuth 2.0 client credentials, end to end on this machine:
 *
 *   agent ──▶ Aperture ──(Bearer <JWT>)──▶ reports API
 *                 │
 *                 └──(client id + secret)──▶ authorization server (oidc-provider)
 *
 * The authorization server issues short-lived JWT access tokens for the reports API; the API
 * accepts nothing else; Aperture holds the client secret, fetches a token once, caches it until
 * shortly before it expires and adds it to each proxied request. The agent never sees a secret
 * or a token.
 */
import { randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Aperture, clientCredentials, grant, http, loopback } from "aperture"
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from "jose"
import Provider, { errors } from "oidc-provider"

const CLIENT_ID = "aperture-demo"
const SCOPE = "reports:read"
// A fresh secret per run: only the authorization server and Aperture ever hold it.
const clientSecret = randomBytes(24).toString("base64url")

const listen = (server: Server) =>
  new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)))

// 1. The reports API: a JWT from our issuer, for this audience, with the scope — or 401.
const apiServer = createServer()
const apiUrl = `http://127.0.0.1:${await listen(apiServer)}/`

// 2. The authorization server (client credentials grant, JWT access tokens per resource).
const authServer = createServer()
const issuer = `http://127.0.0.1:${await listen(authServer)}`
const { privateKey } = await generateKeyPair("RS256", { extractable: true })
const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: clientSecret,
    grant_types: ["client_credentials"],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: "client_secret_basic",
    scope: SCOPE
  }],
  jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: "demo", use: "sig", alg: "RS256" }] },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  ttl: { ClientCredentials: 300 },
  scopes: [SCOPE],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => apiUrl,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== apiUrl) throw new errors.InvalidTarget()
        return { scope: SCOPE, audience: apiUrl, accessTokenFormat: "jwt", accessTokenTTL: 300 }
      }
    }
  }
})
authServer.on("request", provider.callback())

const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`))
let tokensSeen = 0
apiServer.on("request", async (req: IncomingMessage, res: ServerResponse) => {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1]
  try {
    if (token === undefined) throw new Error("no bearer token")
    const { payload } = await jwtVerify(token, jwks, { issuer, audience: apiUrl })
    if (!String(payload["scope"] ?? "").split(" ").includes(SCOPE)) throw new Error(`scope ${SCOPE} missing`)
    tokensSeen++
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ path: req.url, report: "Q3: 42 widgets", client_id: payload["client_id"], scope: payload["scope"] }))
  } catch (error) {
    res.writeHead(401, { "www-authenticate": `Bearer error="invalid_token"`, "content-type": "application/json" })
    res.end(JSON.stringify({ error: String(error instanceof Error ? error.message : error) }))
  }
})

// 3. Aperture: the API as an HTTP connector whose credential is the client credentials grant.
const gateway = await Aperture.start({
  server: { host: "127.0.0.1", port: Number(process.env["PORT"] ?? 8080) },
  connectors: {
    reports: http({
      url: apiUrl,
      allowPrivate: true, // the demo API is on loopback, which HTTP connectors refuse by default
      description: "Reports API, OAuth 2.0 client credentials",
      auth: clientCredentials({
        tokenUrl: `${issuer}/token`,
        clientId: CLIENT_ID,
        clientSecret,
        scopes: [SCOPE],
        resource: apiUrl
      })
    })
  },
  identity: [loopback({ login: "local" })],
  grants: [grant({ src: ["local"], connectors: ["reports/proxy/**"] })]
})

// 4. An agent's request through the gateway: no credential in it.
const response = await fetch(`${gateway.origin}/v1/connectors/reports/summary`)
console.log(`GET ${gateway.origin}/v1/connectors/reports/summary -> ${response.status} ${await response.text()}`)
if (response.status === 200) console.log("reports API answered 200 through Aperture; the caller sent no credential")
console.log(`Try: curl ${gateway.origin}/v1/connectors/reports/anything   (Ctrl-C to stop)`)

const stop = async () => {
  await gateway.close()
  apiServer.closeAllConnections()
  authServer.closeAllConnections()
  await Promise.all([apiServer, authServer].map((s) => new Promise((resolve) => s.close(resolve))))
  console.log(`stopped (${tokensSeen} authorized API requests)`)
  process.exit(0)
}
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
