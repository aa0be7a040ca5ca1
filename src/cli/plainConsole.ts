/**
 * `@effect/cli` styles its help and usage errors with ANSI codes whatever the output is; piped
 * into a file or `less` they arrive as `^[[0;1m…`. This console drops the styling from what goes
 * to a stream that is not a terminal, and everywhere under `NO_COLOR` (https://no-color.org).
 * @module
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

// SGR sequences only: the styling @effect/printer-ansi emits.
const SGR = /\u001b\[[0-9;]*m/g

const plain = (args: ReadonlyArray<unknown>): Array<unknown> =>
  args.map((arg) => (typeof arg === "string" ? arg.replace(SGR, "") : arg))

/** Whether output to a stream should carry no styling. */
const wantsPlain = (stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean =>
  (env["NO_COLOR"] !== undefined && env["NO_COLOR"] !== "") || stream.isTTY !== true

/** The console `base`, writing stdout and stderr unstyled where the flags say so. */
const plainConsole = (base: Console.Console, plainOut: boolean, plainErr: boolean): Console.Console => {
  const out = (args: ReadonlyArray<unknown>) => (plainOut ? plain(args) : [...args])
  const err = (args: ReadonlyArray<unknown>) => (plainErr ? plain(args) : [...args])
  return {
    ...base,
    log: (...args) => base.log(...out(args)),
    info: (...args) => base.info(...out(args)),
    debug: (...args) => base.debug(...out(args)),
    error: (...args) => base.error(...err(args)),
    warn: (...args) => base.warn(...err(args)),
    unsafe: {
      ...base.unsafe,
      log: (...args) => base.unsafe.log(...out(args)),
      info: (...args) => base.unsafe.info(...out(args)),
      debug: (...args) => base.unsafe.debug(...out(args)),
      error: (...args) => base.unsafe.error(...err(args)),
      warn: (...args) => base.unsafe.warn(...err(args))
    }
  }
}

/** Runs `effect` with a console that writes stdout and stderr unstyled where styling is unwanted. */
export const withPlainConsoleWhereUnwanted = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const plainOut = wantsPlain(process.stdout, process.env)
  const plainErr = wantsPlain(process.stderr, process.env)
  if (!plainOut && !plainErr) return effect
  return Console.consoleWith((base) => Console.withConsole(effect, plainConsole(base, plainOut, plainErr)))
}
