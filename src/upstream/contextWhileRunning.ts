/**
 * An `AsyncLocalStorage` that is in use only while a run is in progress: on Node 20 a storage in
 * use puts a hook on every promise of the process (a visible share of a call's CPU: bench/README.md), and
 * disabling it when the last run ends takes the hooks off again. For contexts the hot path does
 * not need: the callers of a listen stream, calls the SDK client sends.
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks"

export class ContextWhileRunning<T> {
  private readonly storage = new AsyncLocalStorage<T>()
  private running = 0

  /** Runs `f` with `value` as the context of everything it starts. */
  async run<A>(value: T, f: () => Promise<A>): Promise<A> {
    this.running++
    try {
      return await this.storage.run(value, f)
    } finally {
      if (--this.running === 0) this.storage.disable()
    }
  }

  /** The context of the code running now, if it runs within {@link run}. */
  getStore(): T | undefined {
    return this.storage.getStore()
  }
}
