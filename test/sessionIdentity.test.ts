/**
 * A 2025-era session is judged on each request's own caller: a credential with the same login
 * as the session's opener but other groups (or tags) cannot use the opener's session, so it
 * cannot borrow the opener's grants.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant } from "../src/index.js"
import { type ApiKeyGateway, startApiKeyGateway } from "./fixtures/apiKeyGateway.js"
import { eventually, rawInitialize, SESSION_HEADERS } from "./helpers/gateway.js"

const ENG_KEY = `eng-${crypto.randomUUID()}`
const PLAIN_KEY = `plain-${crypto.randomUUID()}`

let gateway: RunningGateway
let setup: ApiKeyGateway | undefined

beforeAll(async () => {
  setup = await startApiKeyGateway(
    // Same login, different groups: only the group may call whoami.
    { [ENG_KEY]: { login: "dana", groups: ["eng"] }, [PLAIN_KEY]: { login: "dana" } },
    [
      grant({ src: ["dana"], connectors: ["fx/tools/echo"] }),
      grant({ src: ["group:eng"], connectors: ["fx/tools/whoami"] })
    ]
  )
  gateway = setup.gateway
  await eventually(async () => (await tools(await openSession(ENG_KEY))).includes("fx_whoami"), 30_000, "fx ready")
})

afterAll(async () => {
  await setup?.close()
})

/** Opens a 2025-11-25 session with `key` by raw HTTP; returns the session id. */
const openSession = async (key: string): Promise<string> => {
  const response = await rawInitialize(gateway.url, { headers: { "x-api-key": key } })
  await response.text()
  const id = response.headers.get("mcp-session-id")
  if (id === null) throw new Error(`initialize answered ${response.status} without a session id`)
  const initialized = await post(key, id, { jsonrpc: "2.0", method: "notifications/initialized" })
  await initialized.text()
  return id
}

const post = (key: string, sessionId: string, message: unknown) =>
  fetch(gateway.url, {
    method: "POST",
    headers: { ...SESSION_HEADERS, "x-api-key": key, "mcp-session-id": sessionId },
    body: JSON.stringify(message)
  })

/** The JSON-RPC message of a response, whether JSON or one SSE event. */
const messageOf = async (response: Response) => {
  const text = await response.text()
  const data = text.split("\n").find((line) => line.startsWith("data: ") && line.length > 6)
  return JSON.parse(data === undefined ? text : data.slice(6)) as { result?: any; error?: { code: number; message: string } }
}

const tools = async (sessionId: string, key = ENG_KEY): Promise<Array<string>> => {
  const message = await messageOf(await post(key, sessionId, { jsonrpc: "2.0", id: 1, method: "tools/list" }))
  return (message.result?.tools ?? []).map((tool: { name: string }) => tool.name)
}

const callWhoami = (key: string, sessionId: string) =>
  post(key, sessionId, { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "fx_whoami", arguments: {} } })

describe("2025-era sessions and the caller's groups", () => {
  it("lets the opener call what its group may, and denies the same login without the group on its own session", async () => {
    const eng = await openSession(ENG_KEY)
    const allowed = await messageOf(await callWhoami(ENG_KEY, eng))
    expect(allowed.result?.isError).not.toBe(true)
    expect(allowed.error).toBeUndefined()

    const plain = await openSession(PLAIN_KEY)
    expect(await tools(plain, PLAIN_KEY)).toEqual(["fx_echo"])
    const denied = await messageOf(await callWhoami(PLAIN_KEY, plain))
    expect(denied.result?.content ?? denied.error).toBeDefined()
    expect(denied.error !== undefined || denied.result?.isError === true).toBe(true)
  })

  it("refuses the opener's session to a same-login caller with other groups (404, as for a foreign session)", async () => {
    const eng = await openSession(ENG_KEY)
    const call = await callWhoami(PLAIN_KEY, eng)
    expect(call.status).toBe(404)
    expect((await messageOf(call)).error?.code).toBe(-32001)
    // Lists (answered by the gateway itself) and the GET stream are refused the same way.
    const list = await post(PLAIN_KEY, eng, { jsonrpc: "2.0", id: 3, method: "tools/list" })
    expect(list.status).toBe(404)
    await list.text()
    const stream = await fetch(gateway.url, {
      headers: { accept: "text/event-stream", "mcp-protocol-version": "2025-11-25", "x-api-key": PLAIN_KEY, "mcp-session-id": eng }
    })
    expect(stream.status).toBe(404)
    await stream.text()
    // The opener still has its session.
    expect(await tools(eng)).toContain("fx_whoami")
  })
})
