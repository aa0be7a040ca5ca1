import type { JSONRPCMessage } from "@modelcontextprotocol/server"
import * as Effect from "effect/Effect"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import type { RequestId, SharedEventLogService } from "../../cluster/sharedEventLog.js"
import { boundedEventStore } from "./eventStore.js"
import { FIRST_WRITES_HELD_MS, sharedSdkStreamEvents } from "./sharedSdkStreams.js"

/** What reaches the shared log, in order (the Redis one is test/cluster/sdkStreams.test.ts'). */
const recordingLog = () => {
  const writes: Array<string> = []
  const log: SharedEventLogService = {
    shared: true,
    open: (stream, owner) => void writes.push(`open ${stream} ${JSON.stringify(owner)}`),
    append: (stream, id, _data, answers) => void writes.push(`append ${id}${answers === undefined ? "" : ` answers ${answers}`}`),
    end: (stream) => void writes.push(`end ${stream}`),
    follow: () => Effect.succeed({ _tag: "Unknown" }),
    holdGetStream: () => Effect.succeed([]),
    releaseGetStream: () => {},
    routeOutside: () => Effect.succeed(undefined),
    keepOutside: () => Effect.succeed(undefined)
  }
  return { log, writes }
}

const PRIMING = {} as JSONRPCMessage
const progress = (n: number): JSONRPCMessage => ({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "t", progress: n } })
const answer = (id: RequestId): JSONRPCMessage => ({ jsonrpc: "2.0", id, result: {} })

/** The store, and the requests each SDK stream answers (as the transport would say). */
const setup = () => {
  const { log, writes } = recordingLog()
  const requests = new Map<string, Array<RequestId>>()
  const events = sharedSdkStreamEvents(boundedEventStore(), log, "rep", "sess", (stream) => requests.get(stream) ?? [])
  return { events, requests, writes }
}

describe("sharedSdkStreamEvents", () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it("names the replica in event ids, and gives the transport its own stream id back", async () => {
    const { events, requests } = setup()
    requests.set("s", [1])
    const primed = await events.storeEvent("s", PRIMING)
    expect(primed).toBe("rep:s.1")
    expect(await events.getStreamIdForEventId!(primed)).toBe("s")
    await events.storeEvent("s", progress(1))
    const replayed: Array<string> = []
    expect(await events.replayEventsAfter(primed, { send: async (id) => void replayed.push(id) })).toBe("s")
    expect(replayed).toEqual(["rep:s.2"])
    // The GET stream is not a request's: kept as it is.
    expect(await events.storeEvent("_GET_stream", progress(2))).toBe("_GET_stream.3")
  })

  it("writes nothing for a stream answered within the hold", async () => {
    const { events, requests, writes } = setup()
    requests.set("s", [1])
    await events.storeEvent("s", PRIMING)
    await events.storeEvent("s", answer(1))
    requests.delete("s") // the transport forgets an answered stream
    vi.advanceTimersByTime(FIRST_WRITES_HELD_MS * 2)
    // Without a priming event, an answer first is a quick request too.
    requests.set("t", [2])
    await events.storeEvent("t", answer(2))
    vi.advanceTimersByTime(FIRST_WRITES_HELD_MS * 2)
    expect(writes).toEqual([])
  })

  it("mirrors a stream still unanswered when the hold ends: what it sent, the rest, and the end once all is answered", async () => {
    const { events, requests, writes } = setup()
    requests.set("s", [1, 2])
    await events.storeEvent("s", PRIMING)
    await events.storeEvent("s", progress(1))
    await events.storeEvent("s", answer(1))
    expect(writes).toEqual([])
    vi.advanceTimersByTime(FIRST_WRITES_HELD_MS)
    await events.storeEvent("s", progress(2))
    await events.storeEvent("s", answer(2))
    expect(writes).toEqual([
      `open rep:s {"callId":1,"replica":"rep","session":"sess","batch":[1,2]}`,
      "append rep:s.2",
      "append rep:s.3 answers 1",
      "append rep:s.4",
      "append rep:s.5 answers 2",
      "end rep:s"
    ])
  })

  it("answers a mirrored stream's unanswered requests with an error when the session closes here", async () => {
    const { events, requests, writes } = setup()
    requests.set("s", [7])
    await events.storeEvent("s", progress(1))
    events.close()
    await events.storeEvent("s", answer(7))
    expect(writes).toEqual([`open rep:s {"callId":7,"replica":"rep","session":"sess"}`, "append rep:s.1", "append rep:s.closed answers 7", "end rep:s"])
  })
})
