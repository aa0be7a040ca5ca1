import type { JSONRPCMessage } from "@modelcontextprotocol/server"
import { describe, expect, it } from "vitest"
import { boundedEventStore, estimateBytes, MAX_AGE_MS, MAX_BYTES, MAX_EVENTS } from "./eventStore.js"

const result = (id: number, text: string): JSONRPCMessage => ({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text }] } })

const replayed = async (store: ReturnType<typeof boundedEventStore>, after: string) => {
  const ids: Array<string> = []
  await store.replayEventsAfter(after, { send: async (id) => void ids.push(id) })
  return ids
}

describe("boundedEventStore", () => {
  it("replays a stream's events after the given one, and only that stream's", async () => {
    const store = boundedEventStore()
    const first = await store.storeEvent("a", result(1, "one"))
    await store.storeEvent("b", result(2, "other stream"))
    const third = await store.storeEvent("a", result(3, "three"))
    expect(await store.getStreamIdForEventId?.(first)).toBe("a")
    expect(await replayed(store, first)).toEqual([third])
  })

  it(`keeps at most ${MAX_EVENTS} events`, async () => {
    const store = boundedEventStore()
    for (let i = 0; i < MAX_EVENTS + 50; i++) await store.storeEvent("s", result(i, "x"))
    expect(store.held().events).toBe(MAX_EVENTS)
  })

  it("keeps about MAX_BYTES of payload, and always the newest event", async () => {
    const store = boundedEventStore()
    const big = "y".repeat(256 * 1024)
    for (let i = 0; i < 40; i++) await store.storeEvent("s", result(i, big))
    expect(store.held().bytes).toBeLessThanOrEqual(MAX_BYTES)
    expect(store.held().events).toBe(Math.floor(MAX_BYTES / estimateBytes(result(0, big))))
    const huge = await store.storeEvent("s", result(99, "z".repeat(MAX_BYTES * 2)))
    expect(store.held().events).toBe(1)
    expect(await replayed(store, "s.0")).toEqual([huge])
  })

  it("drops events past their age when pruned, with nothing new stored", async () => {
    let clock = 0
    const store = boundedEventStore(() => clock)
    await store.storeEvent("s", result(1, "old"))
    clock = MAX_AGE_MS / 2
    await store.storeEvent("s", result(2, "newer"))
    clock = MAX_AGE_MS + 1
    store.prune()
    expect(store.held().events).toBe(1)
    clock = MAX_AGE_MS * 2
    store.prune()
    expect(store.held()).toEqual({ events: 0, bytes: 0 })
  })

  it("estimates a message's size from its bulk fields", () => {
    expect(estimateBytes(result(1, "a".repeat(10_000)))).toBeGreaterThan(10_000)
    expect(estimateBytes(result(1, "a".repeat(10_000)))).toBeLessThan(10_500)
    const list: JSONRPCMessage = { jsonrpc: "2.0", id: 1, result: { tools: Array.from({ length: 100 }, (_, i) => ({ name: `t${i}`, description: "d".repeat(100) })) } }
    expect(estimateBytes(list)).toBeGreaterThan(100 * 100)
    expect(estimateBytes({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1 } })).toBeLessThan(512)
  })
})
