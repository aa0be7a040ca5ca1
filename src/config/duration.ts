/**
 * Durations in the config: milliseconds, or an Effect duration string such as `"30 seconds"`.
 * @module
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** A positive duration from milliseconds or a string such as `"30 seconds"`. */
export const DurationSchema = Schema.transformOrFail(
  Schema.Union(Schema.Number, Schema.String).annotations({
    message: () => "expected milliseconds or a duration such as \"30 seconds\""
  }),
  Schema.DurationFromSelf,
  {
    strict: true,
    decode: (input, _options, ast) => {
      const duration = typeof input === "number"
        ? (Number.isFinite(input) ? Option.some(Duration.millis(input)) : Option.none())
        : Duration.decodeUnknown(input)
      if (Option.isNone(duration) || Duration.toMillis(duration.value) <= 0) {
        return ParseResult.fail(
          new ParseResult.Type(ast, input, "expected a positive number of milliseconds or a duration such as \"30 seconds\"")
        )
      }
      return ParseResult.succeed(duration.value)
    },
    encode: (d) => ParseResult.succeed(Duration.toMillis(d))
  }
)
