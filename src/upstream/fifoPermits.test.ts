import { Deferred, Effect, Fiber } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { FifoPermits } from "./fifoPermits.js"

/** Forks a fiber that holds a permit until `gate` opens, recording when it got in. */
const holder = (permits: FifoPermits, name: string, order: Array<string>, gate: Deferred.Deferred<void>) =>
  Effect.fork(permits.withPermit(Effect.zipRight(Effect.sync(() => order.push(name)), Deferred.await(gate))))

describe("FifoPermits", () => {
  it.effect("lets N in at once and the rest in arrival order, one per release", () =>
    Effect.gen(function*() {
      const permits = new FifoPermits(2)
      const order: Array<string> = []
      const gates = yield* Effect.forEach(["a", "b", "c", "d", "e"], () => Deferred.make<void>())
      const fibers = yield* Effect.forEach(["a", "b", "c", "d", "e"], (name, i) => holder(permits, name, order, gates[i]!))
      yield* Effect.yieldNow()
      expect(order).toEqual(["a", "b"])
      expect(permits.waiting).toBe(3)
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Fiber.join(fibers[1]!)
      yield* Effect.yieldNow()
      // One release wakes one waiter, the longest waiting.
      expect(order).toEqual(["a", "b", "c"])
      expect(permits.waiting).toBe(2)
      for (const gate of gates) yield* Deferred.succeed(gate, undefined)
      yield* Fiber.joinAll(fibers)
      expect(order).toEqual(["a", "b", "c", "d", "e"])
      expect(permits.available).toBe(2)
    }))

  it.effect("releases the permit when the work fails or is interrupted", () =>
    Effect.gen(function*() {
      const permits = new FifoPermits(1)
      const failed = yield* Effect.either(permits.withPermit(Effect.fail("boom")))
      expect(failed._tag).toBe("Left")
      expect(permits.available).toBe(1)
      const stuck = yield* Effect.fork(permits.withPermit(Effect.never))
      yield* Effect.yieldNow()
      expect(permits.available).toBe(0)
      yield* Fiber.interrupt(stuck)
      expect(permits.available).toBe(1)
    }))

  it.effect("forgets a waiter interrupted in the queue", () =>
    Effect.gen(function*() {
      const permits = new FifoPermits(1)
      const order: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const first = yield* holder(permits, "first", order, gate)
      const leaving = yield* holder(permits, "leaving", order, gate)
      const last = yield* holder(permits, "last", order, gate)
      yield* Effect.yieldNow()
      expect(permits.waiting).toBe(2)
      yield* Fiber.interrupt(leaving)
      expect(permits.waiting).toBe(1)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(last)
      expect(order).toEqual(["first", "last"])
      expect(permits.available).toBe(1)
    }))

  // On the real clock: its 2 s timeout must be able to fire.
  it.live("passes on a permit handed to a waiter that is interrupted before it runs", () =>
    Effect.gen(function*() {
      const permits = new FifoPermits(1)
      const order: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const never = yield* Deferred.make<void>()
      let handed: Fiber.RuntimeFiber<void> | undefined
      // "first" releases (handing the permit to "handed") and, in the same synchronous step,
      // interrupts "handed": the interrupt is in its mailbox before it has run with the permit.
      const first = yield* Effect.fork(
        Effect.zipRight(permits.withPermit(Deferred.await(gate)), Effect.flatMap(Effect.fiberId, (id) => Effect.sync(() => handed!.unsafeInterruptAsFork(id))))
      )
      handed = yield* holder(permits, "handed", order, never)
      const last = yield* holder(permits, "last", order, gate)
      yield* Effect.yieldNow()
      expect(permits.waiting).toBe(2)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Fiber.await(handed)
      const lastDone = yield* Fiber.join(last).pipe(Effect.timeout("2 seconds"), Effect.either)
      expect(lastDone._tag).toBe("Right")
      expect(order).toEqual(["last"])
      expect(permits.available).toBe(1)
    }))
})
