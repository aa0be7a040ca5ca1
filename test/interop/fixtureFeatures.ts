/**
 * The feature tests for an upstream running the interop fixture (`servers/fastmcp_server.py` or
 * `servers/v1SdkServer.ts`: same tool, resource and prompt names), registered under
 * `describe(<peer>)` with the suite's feature names. Each runs with both SDK clients.
 */
import { expect, it } from "vitest"
import { connectV1, connectV2, errorOf, eventually } from "../helpers/gateway.js"
import { connectAs, ERAS, textOf, type Caller, withCaller } from "./upstreamCallers.js"

export interface FixturePeer {
  /** The gateway's `/v1/mcp`. */
  readonly url: string
  /** The connector id (the exposed names' prefix). */
  readonly id: string
  /** The upstream's own answer to `tools/call` (for comparing errors): a result or a JSON-RPC error. */
  readonly direct: (name: string, args: Record<string, unknown>) => Promise<unknown>
  /** The fixture's counts of its `slow` tool. */
  readonly slowCounts: () => Promise<{ started: number; completed: number; cancelled: number }>
}

export type Feature =
  | "list/call"
  | "structured content"
  | "isError vs JSON-RPC error"
  | "resources"
  | "templates"
  | "prompts"
  | "completion"
  | "progress"
  | "sampling"
  | "elicitation"
  | "roots (two callers)"
  | "session state (two callers)"
  | "logging"
  | "cancellation"
  | "DELETE"

/** What a JSON-RPC error or a tool result looks like, stripped to what must agree. */
const outcome = async (promise: Promise<unknown>) => {
  try {
    const result = (await promise) as { isError?: boolean }
    return { kind: "result", isError: result.isError === true }
  } catch (error) {
    return { kind: "error", code: (error as { code?: number }).code }
  }
}

const withBoth = async (url: string, run: (client: Caller["client"] & { callTool: (p: { name: string; arguments?: Record<string, unknown> }) => Promise<unknown> }, era: string) => Promise<void>) => {
  const v1 = await connectV1(url)
  try {
    await run(v1.client as never, "v1")
  } finally {
    await v1.client.close()
  }
  const v2 = await connectV2(url)
  try {
    await run(v2 as never, "v2")
  } finally {
    await v2.close()
  }
}

/**
 * A feature the upstream itself cannot offer: the test is named `<feature> (n/a: <reason>)` and
 * `check` shows the upstream fails the same way when called directly.
 */
export interface NotApplicable {
  readonly reason: string
  readonly check: () => Promise<void>
}

/**
 * For an upstream that keeps no session (stateless, or spoken to in 2026-07-28): what Alice's call
 * leaves is not there for her next call, and never for Bob's.
 */
export const keepsNoSession = (peer: () => FixturePeer) => async () => {
  const { url, id } = peer()
  for (const era of ERAS) {
    const alice = await connectAs(era, url, "alice")
    const bob = await connectAs(era, url, "bob")
    try {
      const secret = `alice's ${era} secret ${crypto.randomUUID()}`
      expect(textOf(await alice.call(`${id}_remember`, { value: secret }))).toBe("remembered")
      expect(textOf(await bob.call(`${id}_recall`))).toBe("<nothing>")
      expect(textOf(await alice.call(`${id}_recall`))).toBe("<nothing>")
    } finally {
      await alice.close()
      await bob.close()
    }
  }
}

/** FastMCP's `session_seen`: the protocol version its calls from the gateway arrive in is 2026-07-28. */
export const spokenTo2026 = (peer: () => FixturePeer) => async () => {
  const { url, id } = peer()
  await withCaller(connectAs("v1", url, "alice"), async (caller) => {
    expect(JSON.parse(textOf(await caller.call(`${id}_session_seen`)))).toMatchObject({ protocol: "2026-07-28" })
  })
  await keepsNoSession(peer)()
}

export const fixtureFeatureTests = (
  peer: () => FixturePeer,
  options: { readonly notApplicable?: Partial<Record<Feature, NotApplicable>> } = {}
) => {
  const feature = (name: Feature, body: () => Promise<void>, timeout?: number) => {
    const na = options.notApplicable?.[name]
    if (na !== undefined) it(`${name} (n/a: ${na.reason})`, na.check)
    else it(name, body, timeout)
  }

  feature("list/call", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const names = (await client.listTools()).tools.map((t) => t.name)
      for (const tool of ["add", "weather", "fail", "count", "chatty", "slow", "ask_llm", "ask_user", "my_roots"]) {
        expect(names).toContain(`${id}_${tool}`)
        expect(names).not.toContain(tool)
      }
      const result = (await client.callTool({ name: `${id}_add`, arguments: { a: 2, b: 40 } })) as { content: unknown }
      expect(textOf(result)).toBe("42")
    })
  })

  feature("structured content", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const tool = (await client.listTools()).tools.find((t) => t.name === `${id}_weather`)
      expect(tool?.outputSchema?.properties).toMatchObject({ city: {}, temperature: {}, conditions: {} })
      const result = (await client.callTool({ name: `${id}_weather`, arguments: { city: "Oslo" } })) as { structuredContent?: unknown }
      expect(result.structuredContent).toEqual({ city: "Oslo", temperature: 21.5, conditions: "sunny" })
    })
  })

  feature("isError vs JSON-RPC error", async () => {
    const { url, id, direct } = peer()
    await withBoth(url, async (client) => {
      const failed = (await client.callTool({ name: `${id}_fail`, arguments: { message: "boom" } })) as { isError?: boolean; content: unknown }
      expect(failed.isError).toBe(true)
      expect(textOf(failed)).toContain("failed as asked: boom")
      const unknown = await errorOf(client.callTool({ name: `${id}_no_such_tool`, arguments: {} }))
      expect(unknown.code).toBe(-32602)
      expect(unknown.message).toMatch(/no_such_tool/)
      // Invalid arguments: whatever the upstream answers (a result with isError, or a JSON-RPC
      // error), the caller gets the same kind through the gateway.
      const upstream = await outcome(direct("add", { a: "not a number", b: 1 }))
      const through = await outcome(client.callTool({ name: `${id}_add`, arguments: { a: "not a number", b: 1 } }))
      expect(upstream.kind === "result" ? upstream.isError : upstream.code !== undefined).toBe(true)
      expect(through).toEqual(upstream)
    })
  })

  feature("resources", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const { resources } = await client.listResources()
      expect(resources.map((r) => r.uri)).toContain(`${id}-fixture://readme`)
      const read = await client.readResource({ uri: `${id}-fixture://readme` })
      expect(read.contents).toHaveLength(1)
      expect((read.contents[0] as { text?: string }).text).toMatch(/^the .* readme$/)
    })
  })

  feature("templates", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const { resourceTemplates } = await client.listResourceTemplates()
      expect(resourceTemplates.map((t) => t.uriTemplate)).toContain(`${id}-fixture://items/{item_id}`)
      const read = await client.readResource({ uri: `${id}-fixture://items/7` })
      expect(JSON.parse((read.contents[0] as { text: string }).text)).toEqual({ id: "7", name: "item 7" })
    })
  })

  feature("prompts", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const prompt = (await client.listPrompts()).prompts.find((p) => p.name === `${id}_greet`)
      expect(prompt?.arguments?.map((a) => a.name)).toEqual(["name", "style"])
      const got = await client.getPrompt({ name: `${id}_greet`, arguments: { name: "Ann", style: "warm" } })
      expect(got.messages.map((m) => (m.content as { text?: string }).text)).toEqual(["Greet Ann in a warm way."])
    })
  })

  feature("completion", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const names = await client.complete({ ref: { type: "ref/prompt", name: `${id}_greet` }, argument: { name: "name", value: "al" } })
      expect(names.completion.values).toEqual(["alice", "albert"])
      const items = await client.complete({
        ref: { type: "ref/resource", uri: `${id}-fixture://items/{item_id}` },
        argument: { name: "item_id", value: "1" }
      })
      expect(items.completion.values).toEqual(["1", "12"])
    })
  })

  feature("progress", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      await withCaller(connectAs(era, url, "alice"), async (caller) => {
        // Several calls: a notification lost now and then must not pass unseen.
        for (let round = 0; round < 5; round++) {
          const seen: Array<number> = []
          const result = await caller.call(`${id}_count`, { steps: 6 }, { onprogress: (p) => void seen.push(p.progress) })
          expect(textOf(result)).toBe("counted 6")
          expect(seen, `${era} round ${round}`).toEqual([1, 2, 3, 4, 5, 6])
        }
      })
    }
  })

  feature("sampling", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      await withCaller(connectAs(era, url, "alice", { sampling: `alice's model (${era})` }), async (caller) => {
        const result = await caller.call(`${id}_ask_llm`, { prompt: "hi" })
        expect(textOf(result)).toBe(`model said: alice's model (${era})`)
        expect(caller.asked.sampling).toBe(1)
      })
    }
  })

  feature("elicitation", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      await withCaller(connectAs(era, url, "alice", { elicitation: `Alice-${era}` }), async (caller) => {
        const result = await caller.call(`${id}_ask_user`)
        expect(textOf(result)).toBe(`hello Alice-${era}`)
        expect(caller.asked.elicitation).toBe(1)
      })
    }
  })

  feature("roots (two callers)", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      const aliceRoots = [{ uri: "file:///home/alice", name: "alice" }]
      const alice = await connectAs(era, url, "alice", { roots: aliceRoots })
      const bob = await connectAs(era, url, "bob", { roots: [{ uri: "file:///home/bob", name: "bob" }] })
      try {
        expect(JSON.parse(textOf(await alice.call(`${id}_my_roots`)))).toEqual(["file:///home/alice"])
        expect(JSON.parse(textOf(await bob.call(`${id}_my_roots`)))).toEqual(["file:///home/bob"])
        aliceRoots.push({ uri: "file:///srv/shared", name: "shared" })
        await alice.rootsChanged()
        expect(JSON.parse(textOf(await alice.call(`${id}_my_roots`)))).toEqual(["file:///home/alice", "file:///srv/shared"])
        expect(JSON.parse(textOf(await bob.call(`${id}_my_roots`)))).toEqual(["file:///home/bob"])
      } finally {
        await alice.close()
        await bob.close()
      }
    }
  })

  feature("session state (two callers)", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      const alice = await connectAs(era, url, "alice")
      const bob = await connectAs(era, url, "bob")
      try {
        const secret = `alice's ${era} secret ${crypto.randomUUID()}`
        expect(textOf(await alice.call(`${id}_remember`, { value: secret }))).toBe("remembered")
        // What Alice's calls left in the upstream session is hers: Bob's calls do not see it.
        expect(textOf(await bob.call(`${id}_recall`)), era).not.toContain(secret)
        expect(textOf(await alice.call(`${id}_recall`)), era).toBe(secret)
      } finally {
        await alice.close()
        await bob.close()
      }
    }
  })

  feature("logging", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      const quiet = await connectAs(era, url, "alice")
      const verbose = await connectAs(era, url, "bob")
      try {
        await quiet.setLogLevel("warning")
        await verbose.setLogLevel("debug")
        expect(textOf(await quiet.call(`${id}_chatty`))).toBe("chatted")
        expect(textOf(await verbose.call(`${id}_chatty`))).toBe("chatted")
        const said = (caller: Caller) => caller.logs.map((l) => `${l.level}:${JSON.stringify(l.data)}`)
        await eventually(() => verbose.logs.length >= 4, 5_000, `${era}: four log messages`)
        expect(said(quiet).map((s) => s.split(":")[0]), era).toEqual(["warning", "error"])
        expect(said(verbose).map((s) => s.split(":")[0]), era).toEqual(["debug", "info", "warning", "error"])
        expect(said(verbose).every((s, i) => s.includes(`chatty ${["debug", "info", "warning", "error"][i]}`))).toBe(true)
      } finally {
        await quiet.close()
        await verbose.close()
      }
    }
  })

  feature("cancellation", async () => {
    const { url, id, slowCounts } = peer()
    for (const era of ERAS) {
      await withCaller(connectAs(era, url, "alice"), async (caller) => {
        const before = await slowCounts()
        const controller = new AbortController()
        const pending = caller.call(`${id}_slow`, { seconds: 20 }, { signal: controller.signal }).then(() => "finished", (e: Error) => e)
        await eventually(async () => (await slowCounts()).started > before.started, 10_000, `${era}: the call to start upstream`)
        controller.abort("changed my mind")
        expect(await pending).toBeInstanceOf(Error)
        await eventually(async () => (await slowCounts()).cancelled > before.cancelled, 10_000, `${era}: the upstream to see the cancellation`)
        expect((await slowCounts()).completed).toBe(before.completed)
        // The caller's session goes on.
        expect(textOf(await caller.call(`${id}_add`, { a: 1, b: 1 }))).toBe("2")
      })
    }
  })

  feature("DELETE", async () => {
    const { url, id } = peer()
    const leaving = await connectV1(url)
    const staying = await connectV1(url)
    expect(textOf((await leaving.client.callTool({ name: `${id}_add`, arguments: { a: 1, b: 2 } })) as never)).toBe("3")
    const sessionId = leaving.transport.sessionId
    expect(sessionId).toBeDefined()
    await leaving.transport.terminateSession()
    // The session is gone at the gateway …
    const after = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-session-id": sessionId!, "mcp-protocol-version": "2025-11-25" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    expect(after.status).toBe(404)
    await after.text()
    await leaving.client.close()
    // … and the upstream still serves everyone else.
    expect(textOf((await staying.client.callTool({ name: `${id}_add`, arguments: { a: 2, b: 2 } })) as never)).toBe("4")
    await staying.client.close()
  })
}
