import { describe, expect, it } from "vitest"
import { HeldCall, HeldCalls } from "./heldCalls.js"

describe("HeldCalls", () => {
  it("closeAll abandons every held call at once: its open questions fail, the upstream call is aborted, no timer is left", async () => {
    const calls = new HeldCalls(60_000)
    const aborted: Array<string> = []
    const call = new HeldCall(new Promise(() => {}), (reason) => void aborted.push(reason.message))
    const question = call.ask("sampling/createMessage", { messages: [] })
    const outcome = await call.next()
    expect(outcome.kind).toBe("questions")
    calls.hold(call, "alice\u0000fx")
    expect(calls.size).toBe(1)
    calls.closeAll(new Error("the gateway is shutting down"))
    await expect(question).rejects.toThrow("the gateway is shutting down")
    expect(aborted).toEqual(["the gateway is shutting down"])
    expect(calls.size).toBe(0)
    expect(calls.take("anything", "alice\u0000fx")).toBeUndefined()
  })

  it("a held call belongs to its owner only", () => {
    const calls = new HeldCalls(60_000)
    const call = new HeldCall(new Promise(() => {}), () => {})
    const token = calls.hold(call, "alice\u0000fx")
    expect(calls.take(token, "bob\u0000fx")).toBeUndefined()
    expect(calls.take(token, "alice\u0000fx")).toBe(call)
    calls.closeAll(new Error("done"))
  })
})
