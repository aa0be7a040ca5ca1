/**
 * A counting semaphore that hands a released permit to the longest waiter, and wakes only it.
 *
 * Why not `Effect.makeSemaphore`: its release wakes every waiter, each re-checks, one wins and
 * the rest queue again. With 100 connectors behind 32 discovery permits that is thousands of
 * wasted wake-ups at start-up (a large share of the runtime's work while connecting: bench/README.md).
 * Here a release is O(1) and the order is first come, first served.
 * @module
 */
import * as Effect from "effect/Effect"

interface Waiter {
  readonly resume: (effect: Effect.Effect<void>) => void
  /** Set when a release handed this waiter its permit. */
  granted: boolean
}

export class FifoPermits {
  private free: number
  /** Insertion-ordered, so the first value is the longest waiter; removal on interrupt is O(1). */
  private readonly waiters = new Set<Waiter>()

  constructor(permits: number) {
    this.free = permits
  }

  private releaseUnsafe(): void {
    const next = this.waiters.values().next()
    if (next.done === true) {
      this.free += 1
      return
    }
    this.waiters.delete(next.value)
    next.value.granted = true
    next.value.resume(Effect.void)
  }

  /**
   * Waits for a permit. Interrupted while waiting, it leaves the queue; interrupted after a
   * permit was handed to it but before it ran, it passes that permit on.
   */
  private readonly take: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.free > 0) {
      this.free -= 1
      resume(Effect.void)
      return
    }
    const waiter: Waiter = { resume, granted: false }
    this.waiters.add(waiter)
    return Effect.sync(() => {
      if (waiter.granted) this.releaseUnsafe()
      else this.waiters.delete(waiter)
    })
  })

  private readonly release: Effect.Effect<void> = Effect.sync(() => this.releaseUnsafe())

  /** Runs `self` holding one permit (the same shape as `Semaphore.withPermits(1)`). */
  withPermit<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(this.take), () => Effect.ensuring(restore(self), this.release))
    )
  }

  /** Permits not held, for tests and diagnostics. */
  get available(): number {
    return this.free
  }

  /** Fibers waiting for a permit. */
  get waiting(): number {
    return this.waiters.size
  }
}
