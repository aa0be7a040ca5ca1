/**
 * One Redis command a request waits on, for the cluster's shared state: it fails at once while
 * Redis is away and after {@link COMMAND_TIMEOUT} at most, with {@link SharedStateUnavailable},
 * so a request answers 503 rather than hanging. Fire-and-forget writes use {@link sendQuietly}.
 * @module
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/** Shared state (Redis) could not be reached: what needed it cannot be done now. */
export class SharedStateUnavailable extends Data.TaggedError("SharedStateUnavailable")<{
  readonly reason: string
}> {
  override get message(): string {
    return `shared session state unavailable (Redis: ${this.reason})`
  }
}

/** What the shared state needs of a node-redis client. */
export interface CommandClient {
  readonly isReady: boolean
  readonly sendCommand: (args: ReadonlyArray<string>) => Promise<unknown>
}

/** A Redis command that takes longer is treated as Redis being away: a request never waits on it. */
export const COMMAND_TIMEOUT = Duration.seconds(1)

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** Sends `args` and waits for the reply, failing with {@link SharedStateUnavailable} while Redis is away. */
export const sharedCommand = (client: CommandClient, args: ReadonlyArray<string>): Effect.Effect<unknown, SharedStateUnavailable> =>
  Effect.suspend(() =>
    // A disconnected client would fail anyway; say so at once.
    client.isReady
      ? Effect.tryPromise({
        try: () => client.sendCommand(args),
        catch: (error) => new SharedStateUnavailable({ reason: reasonOf(error) })
      }).pipe(
        Effect.timeoutFail({
          duration: COMMAND_TIMEOUT,
          onTimeout: () => new SharedStateUnavailable({ reason: `no answer within ${Duration.format(COMMAND_TIMEOUT)}` })
        })
      )
      : Effect.fail(new SharedStateUnavailable({ reason: "not connected" }))
  )

/** Sends `args` without waiting: for writes whose loss the next one repairs (touches, releases). */
export const sendQuietly = (client: CommandClient, args: ReadonlyArray<string>): void => {
  if (client.isReady) client.sendCommand(args).catch(() => {})
}
