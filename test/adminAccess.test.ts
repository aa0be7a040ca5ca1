/**
 * Who may read the admin surfaces (issue 18 hole 9): `/metrics` needs role admin or readMetrics;
 * `/api/connectors` shows an admin every connector in full and anyone else only id, protocol and
 * labels of connectors they have no grant on; with no admin grant the loopback caller is admin,
 * and not once a grant names one (in the TS and the JSON config); `/`, `/ui`, `/healthz` refuse a
 * foreign Host like every other endpoint.
 */
import { request } from "node:http"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Aperture, type RunningGateway } from "../src/Aperture.js"
import { decodeApertureJson } from "../src/Aperture.js"
import { apiKeys, bearer, grant, http, loopback, mcp } from "../src/index.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { eventually, startGateway } from "./helpers/gateway.js"

const OPS_KEY = "ops-key-0123456789abcdef"
const ALICE_KEY = "alice-key-0123456789abcdef"
const PROM_KEY = "prom-key-0123456789abcdef"
const FORBIDDEN = { error: "forbidden: /metrics needs a grant with role \"admin\" or readMetrics" }

interface Listing {
  readonly admin?: boolean
  readonly connectors: Array<Record<string, unknown> & { id: string; status: string; tools: Array<string> }>
}

let fx: V2Upstream
let gateway: RunningGateway

const get = (origin: string, path: string, key?: string) =>
  fetch(`${origin}${path}`, key === undefined ? {} : { headers: { "x-api-key": key } })

const listing = async (origin: string, key?: string): Promise<Listing> => {
  const response = await get(origin, "/api/connectors", key)
  expect(response.status).toBe(200)
  return (await response.json()) as Listing
}

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  gateway = await startGateway({
    connectors: {
      fx: mcp({ url: fx.url, description: "fixture server", labels: ["test"] }),
      api: http({ url: "https://api.example.com", auth: bearer({ secret: "upstream-token-1234567890" }), description: "REST API" })
    },
    identity: [
      apiKeys({ keys: { [OPS_KEY]: { login: "ops" }, [ALICE_KEY]: { login: "alice" }, [PROM_KEY]: { login: "prom" } } }),
      loopback({ login: "local" })
    ],
    grants: [
      grant({ src: ["ops"], role: "admin" }),
      grant({ src: ["prom"], readMetrics: true }),
      grant({ src: ["alice", "local"], connectors: ["fx/tools/echo"] })
    ]
  })
  await eventually(async () => (await listing(gateway.origin, OPS_KEY)).connectors.find((c) => c.id === "fx")?.status === "ready", 30_000)
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
})

describe("/metrics", () => {
  it("answers an admin and a readMetrics caller, and 403 to anyone else, loopback included once a grant names an admin", async () => {
    for (const key of [OPS_KEY, PROM_KEY]) {
      const response = await get(gateway.origin, "/metrics", key)
      expect(response.status).toBe(200)
      expect(await response.text()).toContain("aperture_connector_status{connector=\"fx\",status=\"ready\"} 1")
    }
    for (const key of [ALICE_KEY, undefined]) {
      const response = await get(gateway.origin, "/metrics", key)
      expect(response.status).toBe(403)
      expect(response.headers.get("content-type")).toContain("application/json")
      const text = await response.text()
      expect(JSON.parse(text)).toEqual(FORBIDDEN)
      expect(text).not.toContain("fx")
    }
  })
})

describe("/api/connectors", () => {
  it("shows an admin every connector in full, with every tool the catalog has", async () => {
    const { admin, connectors } = await listing(gateway.origin, OPS_KEY)
    expect(admin).toBe(true)
    const api = connectors.find((c) => c.id === "api")
    expect(api).toMatchObject({ protocol: "http", description: "REST API", auth_type: "bearer_token", transport: "http" })
    const fxEntry = connectors.find((c) => c.id === "fx")
    expect(fxEntry).toMatchObject({ status: "ready", description: "fixture server", labels: ["test"] })
    expect(fxEntry?.tools).toEqual(expect.arrayContaining(["fx_echo", "fx_whoami"]))
  })

  it("shows a user in full only what a grant reaches; the rest as no_access with id, protocol and labels only", async () => {
    for (const key of [ALICE_KEY, undefined]) {
      const body = await listing(gateway.origin, key)
      expect(body.admin).toBeUndefined()
      expect(body.connectors.find((c) => c.id === "fx")).toMatchObject({ status: "ready", description: "fixture server", tools: ["fx_echo"] })
      expect(body.connectors.find((c) => c.id === "api")).toEqual({ id: "api", protocol: "http", labels: [], status: "no_access", tools: [] })
    }
  })

  it("gives a readMetrics-only caller no admin view", async () => {
    const body = await listing(gateway.origin, PROM_KEY)
    expect(body.admin).toBeUndefined()
    expect(body.connectors).toEqual([
      { id: "fx", protocol: "mcp", labels: ["test"], status: "no_access", tools: [] },
      { id: "api", protocol: "http", labels: [], status: "no_access", tools: [] }
    ])
    expect(JSON.stringify(body)).not.toMatch(/description|auth_type|transport|REST|fixture/)
  })
})

describe("the default admin", () => {
  it("is the loopback caller while no grant has role admin; an apiKeys caller is not", async () => {
    const open = await startGateway({
      connectors: { api: http({ url: "https://api.example.com", description: "REST API" }) },
      identity: [apiKeys({ keys: { [ALICE_KEY]: { login: "alice" } } }), loopback({ login: "local" })],
      grants: [grant({ src: ["alice"], connectors: ["fx/**"] })]
    })
    try {
      expect((await get(open.origin, "/metrics")).status).toBe(200)
      const local = await listing(open.origin)
      expect(local.admin).toBe(true)
      expect(local.connectors[0]).toMatchObject({ id: "api", description: "REST API", status: "ready" })
      expect((await get(open.origin, "/metrics", ALICE_KEY)).status).toBe(403)
      expect((await listing(open.origin, ALICE_KEY)).connectors[0]).toEqual({
        id: "api",
        protocol: "http",
        labels: [],
        status: "no_access",
        tools: []
      })
    } finally {
      await open.close()
    }
  })

  it("follows { \"role\": \"admin\" } in the original's JSON config", async () => {
    const fromJson = async (adminSrc: string) => {
      const decoded = await Effect.runPromise(decodeApertureJson({
        server: { port: 0 },
        connectors: { servers: { api: { protocol: "http", url: "https://api.example.com" } } },
        grants: [
          { src: [adminSrc], app: { "tailscale.com/cap/aperture": [{ role: "admin" }] } },
          { src: ["local"], app: { "tailscale.com/cap/aperture": [{ connectors: ["api/**"] }] } }
        ]
      }, undefined).pipe(Effect.either))
      if (Either.isLeft(decoded)) throw new Error(decoded.left.message)
      return Aperture.start(decoded.right)
    }
    const elsewhere = await fromJson("ops@example.com")
    try {
      // The loopback caller is a user there: its grant's connector in full, no metrics.
      expect(await (await get(elsewhere.origin, "/metrics")).json()).toEqual(FORBIDDEN)
      expect((await listing(elsewhere.origin)).admin).toBeUndefined()
    } finally {
      await elsewhere.close()
    }
    const here = await fromJson("local")
    try {
      expect((await get(here.origin, "/metrics")).status).toBe(200)
      expect((await listing(here.origin)).admin).toBe(true)
    } finally {
      await here.close()
    }
  })
})

describe("Host/Origin on the status page and /healthz", () => {
  const withHeaders = (path: string, headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      request(`${gateway.origin}${path}`, { headers }, (res) => {
        let body = ""
        res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk)).on("end", () => resolve({ status: res.statusCode ?? 0, body }))
      }).on("error", reject).end()
    })

  it("refuses a foreign Host or Origin with a JSON 403 on /, /ui and /healthz, and serves the loopback names", async () => {
    for (const path of ["/", "/ui", "/healthz"]) {
      for (const headers of [{ host: "evil.example" }, { origin: "http://evil.example" }]) {
        const refused = await withHeaders(path, headers)
        expect(refused.status).toBe(403)
        expect(JSON.parse(refused.body)).toEqual({ error: expect.stringMatching(/^forbidden: /) })
      }
      expect((await withHeaders(path, { host: new URL(gateway.origin).host })).status).toBe(200)
    }
  })
})
