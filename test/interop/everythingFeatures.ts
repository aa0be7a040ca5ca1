/**
 * The feature tests for the official `@modelcontextprotocol/server-everything` behind the gateway
 * (over stdio or streamable HTTP), registered under `describe(<peer>)` with the suite's feature
 * names; each runs with both SDK clients.
 */
import { expect, it } from "vitest"
import { connectV1, connectV2, errorOf, eventually } from "../helpers/gateway.js"
import { connectAs, ERAS, textOf, type Caller, withCaller } from "./upstreamCallers.js"

export interface EverythingPeer {
  readonly url: string
  readonly id: string
  /** server-everything's own answer to `tools/call`, without the gateway. */
  readonly direct: (name: string, args: Record<string, unknown>) => Promise<unknown>
  /** The connector with an upstream session per caller, if not `id` (stdio defaults to one shared process). */
  readonly isolatedId?: string
}

type AnyClient = Caller["client"] & { callTool: (p: { name: string; arguments?: Record<string, unknown> }) => Promise<unknown> }

const withBoth = async (url: string, run: (client: AnyClient) => Promise<void>) => {
  const v1 = await connectV1(url)
  try {
    await run(v1.client as never)
  } finally {
    await v1.client.close()
  }
  const v2 = await connectV2(url)
  try {
    await run(v2 as never)
  } finally {
    await v2.close()
  }
}

const outcome = async (promise: Promise<unknown>) => {
  try {
    const result = (await promise) as { isError?: boolean }
    return { kind: "result", isError: result.isError === true }
  } catch (error) {
    return { kind: "error", code: (error as { code?: number }).code }
  }
}

/**
 * Registers the feature tests, without those in `known` (failing for an open issue, run by
 * `upstream-known.test.ts`), or only those in `only`.
 */
export const everythingFeatureTests = (
  peer: () => EverythingPeer,
  options: { readonly known?: ReadonlyArray<string>; readonly only?: ReadonlyArray<string> } = {}
) => {
  const feature = (name: string, body: () => Promise<void>, timeout?: number) => {
    if (options.known?.includes(name) || (options.only !== undefined && !options.only.includes(name))) return
    it(name, body, timeout)
  }

  feature("list/call", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const names = (await client.listTools()).tools.map((t) => t.name)
      for (const tool of ["echo", "get-sum", "get-structured-content", "trigger-long-running-operation"]) {
        expect(names).toContain(`${id}_${tool}`)
        expect(names).not.toContain(tool)
      }
      expect(textOf((await client.callTool({ name: `${id}_echo`, arguments: { message: "hi there" } })) as never)).toBe("Echo: hi there")
      expect(textOf((await client.callTool({ name: `${id}_get-sum`, arguments: { a: 2, b: 40 } })) as never)).toMatch(/\b42\b/)
    })
  })

  feature("structured content", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const tool = (await client.listTools()).tools.find((t) => t.name === `${id}_get-structured-content`)
      expect(tool?.outputSchema?.properties).toMatchObject({ temperature: {}, conditions: {}, humidity: {} })
      const result = (await client.callTool({ name: `${id}_get-structured-content`, arguments: { location: "Chicago" } })) as { structuredContent?: unknown }
      expect(result.structuredContent).toEqual({ temperature: 36, conditions: "Light rain / drizzle", humidity: 82 })
    })
  })

  feature("isError vs JSON-RPC error", async () => {
    const { url, id, direct } = peer()
    await withBoth(url, async (client) => {
      const unknown = await errorOf(client.callTool({ name: `${id}_no-such-tool`, arguments: {} }))
      expect(unknown.code).toBe(-32602)
      // Invalid arguments: server-everything answers a result with isError; the gateway keeps it so.
      const upstream = await outcome(direct("get-sum", { a: "two", b: 40 }))
      const through = await outcome(client.callTool({ name: `${id}_get-sum`, arguments: { a: "two", b: 40 } }))
      expect(upstream).toEqual({ kind: "result", isError: true })
      expect(through).toEqual(upstream)
    })
  })

  feature("resources", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const { resources } = await client.listResources()
      const documents = resources.filter((r) => r.uri.startsWith(`${id}-demo://resource/static/document/`))
      expect(documents.length).toBeGreaterThan(0)
      const read = await client.readResource({ uri: documents[0]!.uri })
      expect(read.contents[0]?.uri).toBe(documents[0]!.uri)
      expect(((read.contents[0] as { text?: string }).text ?? "").length).toBeGreaterThan(0)
    })
  })

  feature("templates", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const { resourceTemplates } = await client.listResourceTemplates()
      expect(resourceTemplates.map((t) => t.uriTemplate)).toContain(`${id}-demo://resource/dynamic/text/{resourceId}`)
      const read = await client.readResource({ uri: `${id}-demo://resource/dynamic/text/3` })
      expect((read.contents[0] as { text: string }).text).toMatch(/^Resource 3: This is a plaintext resource/)
    })
  })

  feature("prompts", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const names = (await client.listPrompts()).prompts.map((p) => p.name)
      expect(names).toEqual(expect.arrayContaining([`${id}_simple-prompt`, `${id}_args-prompt`, `${id}_completable-prompt`]))
      const got = await client.getPrompt({ name: `${id}_args-prompt`, arguments: { city: "Oslo", state: "Viken" } })
      expect(got.messages.map((m) => (m.content as { text?: string }).text)).toEqual(["What's weather in Oslo, Viken?"])
    })
  })

  feature("completion", async () => {
    const { url, id } = peer()
    await withBoth(url, async (client) => {
      const department = await client.complete({ ref: { type: "ref/prompt", name: `${id}_completable-prompt` }, argument: { name: "department", value: "S" } })
      expect(department.completion.values).toEqual(["Sales", "Support"])
      // The second argument's completions depend on the first (context.arguments passes through).
      const name = await client.complete({
        ref: { type: "ref/prompt", name: `${id}_completable-prompt` },
        argument: { name: "name", value: "" },
        context: { arguments: { department: "Engineering" } }
      })
      expect(name.completion.values).toEqual(["Alice", "Bob", "Charlie"])
      const template = await client.complete({
        ref: { type: "ref/resource", uri: `${id}-demo://resource/dynamic/text/{resourceId}` },
        argument: { name: "resourceId", value: "7" }
      })
      expect(template.completion.values).toEqual(["7"])
    })
  })

  feature("progress", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      await withCaller(connectAs(era, url, "alice"), async (caller) => {
        for (let round = 0; round < 5; round++) {
          const seen: Array<number> = []
          const result = await caller.call(`${id}_trigger-long-running-operation`, { duration: 0.2, steps: 4 }, { onprogress: (p) => void seen.push(p.progress) })
          expect(textOf(result)).toMatch(/Long running operation completed/)
          expect(seen, `${era} round ${round}`).toEqual([1, 2, 3, 4])
        }
      })
    }
  })

  feature("sampling", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      await withCaller(connectAs(era, url, "alice", { sampling: `alice's model (${era})` }), async (caller) => {
        const result = await caller.call(`${id}_trigger-sampling-request`, { prompt: "hi" })
        expect(textOf(result)).toContain(`alice's model (${era})`)
        expect(caller.asked.sampling).toBe(1)
      })
    }
  })

  feature("elicitation", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      await withCaller(connectAs(era, url, "alice", { elicitation: `Alice-${era}` }), async (caller) => {
        const result = await caller.call(`${id}_trigger-elicitation-request`)
        expect(textOf(result)).toContain(`Alice-${era}`)
        expect(caller.asked.elicitation).toBe(1)
      })
    }
  })

  feature("roots (two callers)", async () => {
    const { url } = peer()
    const id = peer().isolatedId ?? peer().id
    for (const era of ERAS) {
      const aliceRoots = [{ uri: "file:///home/alice", name: "alice" }]
      const alice = await connectAs(era, url, "alice", { roots: aliceRoots })
      const bob = await connectAs(era, url, "bob", { roots: [{ uri: "file:///home/bob", name: "bob" }] })
      try {
        // server-everything caches roots/list per upstream session: Bob must not get Alice's.
        const aliceSees = textOf(await alice.call(`${id}_get-roots-list`))
        expect(aliceSees, era).toContain("file:///home/alice")
        const bobSees = textOf(await bob.call(`${id}_get-roots-list`))
        expect(bobSees, era).toContain("file:///home/bob")
        expect(bobSees, era).not.toContain("file:///home/alice")
        aliceRoots.push({ uri: "file:///srv/shared", name: "shared" })
        await alice.rootsChanged()
        await eventually(async () => textOf(await alice.call(`${id}_get-roots-list`)).includes("file:///srv/shared"), 5_000, `${era}: alice's new root`)
        const bobAgain = textOf(await bob.call(`${id}_get-roots-list`))
        expect(bobAgain, era).toContain("file:///home/bob")
        expect(bobAgain, era).not.toContain("alice")
      } finally {
        await alice.close()
        await bob.close()
      }
    }
  })

  feature("logging", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      const caller = await connectAs(era, url, "alice")
      try {
        await caller.setLogLevel("debug")
        // The first simulated message is sent at once (then one every 5 s): it must reach the caller.
        expect(textOf(await caller.call(`${id}_toggle-simulated-logging`))).toMatch(/^Started simulated/)
        await eventually(() => caller.logs.length > 0, 5_000, `${era}: a log message`)
        expect(JSON.stringify(caller.logs[0]!.data)).toMatch(/level[- ]message/i)
      } finally {
        await caller.call(`${id}_toggle-simulated-logging`).catch(() => {})
        await caller.close()
      }
    }
  })

  feature("cancellation", async () => {
    const { url, id } = peer()
    for (const era of ERAS) {
      await withCaller(connectAs(era, url, "alice"), async (caller) => {
        const seen: Array<number> = []
        const controller = new AbortController()
        const pending = caller
          .call(`${id}_trigger-long-running-operation`, { duration: 20, steps: 40 }, { signal: controller.signal, onprogress: (p) => void seen.push(p.progress) })
          .then(() => "finished", (e: Error) => e)
        await eventually(() => seen.length >= 1, 10_000, `${era}: the first progress`)
        controller.abort("changed my mind")
        expect(await pending).toBeInstanceOf(Error)
        const atAbort = seen.length
        // No more progress reaches the caller for the cancelled call (one every 0.5 s before).
        await new Promise((r) => setTimeout(r, 1_500))
        expect(seen.length).toBeLessThanOrEqual(atAbort + 1)
        expect(textOf(await caller.call(`${id}_echo`, { message: "still here" }))).toBe("Echo: still here")
      })
    }
  })

  feature("DELETE", async () => {
    const { url, id } = peer()
    const leaving = await connectV1(url)
    const staying = await connectV1(url)
    expect(textOf((await leaving.client.callTool({ name: `${id}_echo`, arguments: { message: "a" } })) as never)).toBe("Echo: a")
    const sessionId = leaving.transport.sessionId
    expect(sessionId).toBeDefined()
    await leaving.transport.terminateSession()
    const after = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-session-id": sessionId!, "mcp-protocol-version": "2025-11-25" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    expect(after.status).toBe(404)
    await after.text()
    await leaving.client.close()
    expect(textOf((await staying.client.callTool({ name: `${id}_echo`, arguments: { message: "b" } })) as never)).toBe("Echo: b")
    await staying.client.close()
  })
}
