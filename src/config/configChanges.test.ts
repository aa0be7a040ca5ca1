import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { bearer, userOAuth } from "../index.js"
import { decodeConfig } from "../Aperture.js"
import { planChange } from "./configChanges.js"
import { grant, mcp, stdio, type UserConfig } from "./dsl.js"

const decode = (config: UserConfig) => Effect.runSync(decodeConfig(config))

const base: UserConfig = {
  connectors: {
    a: mcp({ url: "https://a.example.com/mcp", auth: bearer({ secret: "secret-one" }) }),
    p: stdio({ command: "node", args: ["server.js"], env: { TOKEN: "t1" } })
  },
  grants: [grant({ src: ["*"], connectors: ["**"] })]
}

describe("planChange", () => {
  it("finds nothing to apply in the same config decoded again, and keeps the running objects", () => {
    const running = decode(base)
    const change = planChange(running, decode(base))
    expect(change.connectors).toEqual({ added: [], removed: [], changed: [] })
    expect(change.grantsChanged || change.identityChanged).toBe(false)
    expect(change.needsRestart).toEqual([])
    expect(change.next.connectors[0]).toBe(running.connectors[0])
  })

  it("sees a changed secret (compared by hash) and a changed stdio env as a change of that connector only", () => {
    const next = decode({
      ...base,
      connectors: { ...base.connectors, a: mcp({ url: "https://a.example.com/mcp", auth: bearer({ secret: "secret-two" }) }) }
    })
    expect(planChange(decode(base), next).connectors.changed.map((c) => c.id)).toEqual(["a"])
    const env = decode({ ...base, connectors: { ...base.connectors, p: stdio({ command: "node", args: ["server.js"], env: { TOKEN: "t2" } }) } })
    expect(planChange(decode(base), env).connectors.changed.map((c) => c.id)).toEqual(["p"])
  })

  it("keeps settings read at start and per-user connectors, naming them as needing a restart", () => {
    const next = decode({
      ...base,
      server: { port: 9999, sessionsPerCaller: 3 },
      secretKey: "a secret key that is long enough for the check",
      connectors: {
        ...base.connectors,
        u: mcp({ url: "https://u.example.com/mcp", auth: userOAuth.dynamic() })
      }
    })
    const running = decode(base)
    const change = planChange(running, next)
    expect(change.needsRestart).toEqual(expect.arrayContaining(["server.port", "server.sessionsPerCaller", "secretKey", "connectors.u"]))
    expect(change.next.server).toBe(running.server)
    expect(change.next.secretKey).toBe(running.secretKey)
    expect(change.next.connectors.map((c) => c.id)).toEqual(["a", "p"])
    expect(change.connectors.added).toEqual([])
  })

  it("tells added, removed and grant changes apart", () => {
    const next = decode({
      connectors: { b: mcp({ url: "https://b.example.com/mcp" }), a: base.connectors!["a"]! },
      grants: [grant({ src: ["local"], connectors: ["a/**"] })]
    })
    const change = planChange(decode(base), next)
    expect(change.connectors.added.map((c) => c.id)).toEqual(["b"])
    expect(change.connectors.removed.map((c) => c.id)).toEqual(["p"])
    expect(change.connectors.changed).toEqual([])
    expect(change.grantsChanged).toBe(true)
  })
})
