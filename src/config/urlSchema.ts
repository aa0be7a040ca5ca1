/**
 * The schema of a URL-valued config field: the string parsed as a URL (`not a valid URL: "…"`
 * otherwise), then a field's own rule (schemes, loopback, origin only) says what is wrong with it.
 * A URL holding credentials is never echoed back as the value in the error.
 * @module
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** Whether `url` carries a user name or password (`https://user:pass@host`). */
export const hasCredentials = (url: URL): boolean => url.username !== "" || url.password !== ""

/**
 * A string decoded to a `URL` when `check` finds nothing wrong with it (`check` answers the
 * problem, or undefined). `expected` is added to the not-a-URL message, e.g. "an origin such as …".
 */
export const urlSchema = (check: (url: URL) => string | undefined, options: { readonly expected?: string } = {}) =>
  Schema.transformOrFail(Schema.String, Schema.instanceOf(URL), {
    strict: true,
    decode: (input, _options, ast) => {
      let url: URL
      try {
        url = new URL(input)
      } catch {
        const expected = options.expected === undefined ? "" : ` (expected ${options.expected})`
        return ParseResult.fail(new ParseResult.Type(ast, input, `not a valid URL: "${input}"${expected}`))
      }
      const problem = check(url)
      return problem === undefined
        ? ParseResult.succeed(url)
        : ParseResult.fail(new ParseResult.Type(ast, hasCredentials(url) ? "<redacted>" : input, problem))
    },
    encode: (url) => ParseResult.succeed(url.href)
  })
