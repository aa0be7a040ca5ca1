/**
 * Secrets in the config: a plain string, or `env("NAME")`, read once at load time and held as
 * `Redacted` from then on, so it never prints in a log line, an error or `aperture check`.
 * @module
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

const EnvRefTypeId: unique symbol = Symbol.for("aperture/EnvRef") as never

/** A reference to an environment variable, resolved when the config is loaded. */
export interface EnvRef {
  readonly [EnvRefTypeId]: typeof EnvRefTypeId
  readonly name: string
}

/**
 * Reads the secret from the environment variable `name` when the config loads.
 *
 * @example
 * bearer({ secret: env("GITHUB_TOKEN") })
 */
export const env = (name: string): EnvRef => ({ [EnvRefTypeId]: EnvRefTypeId, name })

export const isEnvRef = (u: unknown): u is EnvRef =>
  typeof u === "object" && u !== null && EnvRefTypeId in u && typeof (u as EnvRef).name === "string"

/** What a user may write where a secret goes. */
export type SecretInput = string | EnvRef

const EnvRefSchema = Schema.declare(isEnvRef, {
  identifier: "env()",
  message: () => "expected a string or env(\"NAME\")"
})

/**
 * Decodes a string or `env("NAME")` into `Redacted<string>`. The variable is read through Effect's
 * `ConfigProvider` (the process environment by default), so tests can supply their own.
 */
export const Secret: Schema.Schema<Redacted.Redacted<string>, SecretInput> = Schema.transformOrFail(
  Schema.Union(
    Schema.String.annotations({ message: () => "expected a string or env(\"NAME\")" }),
    EnvRefSchema
  ),
  Schema.RedactedFromSelf(Schema.String),
  {
    strict: true,
    decode: (input, _options, ast) => {
      if (typeof input === "string") {
        return input.length === 0
          ? ParseResult.fail(new ParseResult.Type(ast, "", "must not be empty"))
          : ParseResult.succeed(Redacted.make(input))
      }
      return Config.string(input.name).pipe(
        Effect.mapError(() => new ParseResult.Type(ast, input, `environment variable ${input.name} is not set`)),
        Effect.flatMap((value) =>
          value.length === 0
            ? Effect.fail(new ParseResult.Type(ast, input, `environment variable ${input.name} is empty`))
            : Effect.succeed(Redacted.make(value))
        )
      )
    },
    encode: (redacted) => ParseResult.succeed(Redacted.value(redacted))
  }
).annotations({ identifier: "Secret" })

/** Where a secret came from, for `aperture check` output: never the value itself. */
export const describeSecretInput = (input: unknown): string =>
  isEnvRef(input) ? `env ${input.name}` : "inline <redacted>"
