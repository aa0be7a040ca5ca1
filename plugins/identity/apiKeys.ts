/**
 * `apiKeys({ keys })`: callers present a key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
 *
 * Keys are hashed once, at load: the config may hold `sha256:<hex>` instead of a live key, and
 * a request costs one SHA-256 and a constant-time comparison against every configured digest.
 * Two shapes: `keys: { "<key or sha256:…>": { login, groups?, tags? } }`, or a list
 * `keys: [{ key: env("CI_KEY"), login, groups?, tags? }]` when a key comes from the environment.
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { defineIdentityPlugin, type Identity, IdentityRejected, Principal } from "../../src/plugin/IdentityPlugin.js"
import { Secret } from "../../src/config/secret.js"
import { bearerToken, looksLikeJwt } from "../../src/identity/bearerToken.js"

/**
 * Shorter live keys can be guessed: they are taken, with a warning when the gateway starts (a
 * load error would stop a test or a demo config cold; the warning says what to do). A hash is
 * taken as given.
 */
export const MIN_KEY_LENGTH = 16
const HASHED = /^sha256:([0-9a-fA-F]{64})$/

const Holder = {
  login: Principal,
  groups: Schema.optionalWith(Schema.Array(Principal), { default: () => [] }),
  tags: Schema.optionalWith(Schema.Array(Principal), { default: () => [] })
}
const HolderSchema = Schema.Struct(Holder)
const ListedKeySchema = Schema.Struct({ key: Secret, ...Holder })

/** One configured key: the SHA-256 of the key, and who presents it. */
export interface ConfiguredKey {
  readonly digest: Redacted.Redacted<Buffer>
  readonly identity: Identity
  /** A live key shorter than {@link MIN_KEY_LENGTH}. */
  readonly short: boolean
}

type HolderInput = typeof HolderSchema.Encoded
export type ApiKeysInput = Readonly<Record<string, HolderInput>> | ReadonlyArray<typeof ListedKeySchema.Encoded>

const sha256 = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest()

/** A key as written → its digest, or why it cannot be used. */
const digestOf = (key: string): Buffer | string => {
  const hashed = HASHED.exec(key)
  if (hashed !== null) return Buffer.from(hashed[1]!, "hex")
  if (key.startsWith("sha256:")) return "a hashed key is sha256: and 64 hex digits (printf %s \"$KEY\" | sha256sum)"
  if (key.length === 0) return "a key must not be empty"
  return sha256(key)
}

const isShort = (key: string) => !HASHED.test(key) && key.length < MIN_KEY_LENGTH

/**
 * Decodes either shape. Live keys never appear in an error path: a record key is named
 * `<key 2>` there (hashes, which are not secret, are shown as written).
 */
const KeysSchema = Schema.transformOrFail(
  Schema.Union(
    Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    Schema.Array(Schema.Unknown)
  ).annotations({ message: () => "expected { \"<key>\": { login } } or [{ key, login }]" }),
  Schema.Array(Schema.Any as Schema.Schema<ConfiguredKey>),
  {
    strict: true,
    decode: (input, options, ast) =>
      Effect.gen(function*() {
        const issues: Array<ParseResult.ParseIssue> = []
        const keys: Array<ConfiguredKey> = []
        const add = (digest: Buffer, holder: typeof HolderSchema.Type, key: string) =>
          keys.push({
            digest: Redacted.make(digest),
            identity: { login: holder.login, groups: holder.groups, tags: holder.tags, via: "apiKeys" },
            short: isShort(key)
          })
        if (Array.isArray(input)) {
          for (const [i, entry] of input.entries()) {
            const decoded = yield* Effect.either(ParseResult.decodeUnknown(ListedKeySchema)(entry, options))
            if (decoded._tag === "Left") {
              issues.push(new ParseResult.Pointer(i, entry, decoded.left))
              continue
            }
            const key = Redacted.value(decoded.right.key)
            const digest = digestOf(key)
            if (typeof digest === "string") {
              issues.push(new ParseResult.Pointer([i, "key"], entry, new ParseResult.Type(ast, "<redacted>", digest)))
            } else add(digest, decoded.right, key)
          }
        } else {
          for (const [i, [key, holder]] of Object.entries(input as Record<string, unknown>).entries()) {
            const label = HASHED.test(key) ? key : `<key ${i}>`
            const digest = digestOf(key)
            if (typeof digest === "string") {
              issues.push(new ParseResult.Pointer(label, holder, new ParseResult.Type(ast, "<redacted>", digest)))
              continue
            }
            const decoded = yield* Effect.either(ParseResult.decodeUnknown(HolderSchema)(holder, options))
            if (decoded._tag === "Left") issues.push(new ParseResult.Pointer(label, holder, decoded.left))
            else add(digest, decoded.right, key)
          }
        }
        if (issues.length > 0) {
          return yield* Effect.fail(
            new ParseResult.Composite(ast, "<redacted>", issues as [ParseResult.ParseIssue, ...Array<ParseResult.ParseIssue>])
          )
        }
        if (keys.length === 0) return yield* Effect.fail(new ParseResult.Type(ast, input, "needs at least one key"))
        return keys
      }),
    encode: (_keys, _options, ast) => ParseResult.fail(new ParseResult.Forbidden(ast, "<redacted>", "keys cannot be encoded"))
  }
)

/** The options as users write them (typed, so a typo is a compile error); decoded as above. */
export const ApiKeysOptions = Schema.Struct({
  keys: KeysSchema as unknown as Schema.Schema<ReadonlyArray<ConfiguredKey>, ApiKeysInput>
})

/** The key a request presents, and whether it came as a Bearer token. */
const presentedKey = (headers: Readonly<Record<string, string | undefined>>) => {
  const header = headers["x-api-key"]
  if (header !== undefined && header !== "") return { key: header.trim(), bearer: false }
  const bearer = bearerToken(headers["authorization"])
  return bearer === undefined ? undefined : { key: bearer, bearer: true }
}

export const apiKeys = defineIdentityPlugin({
  name: "apiKeys",
  options: ApiKeysOptions,
  consumes: ["x-api-key", "authorization"],
  make: ({ keys }) => {
    const digests = keys.map((k) => Redacted.value(k.digest))
    const identities = keys.map((k) => k.identity)
    const unknownKey = Effect.fail(new IdentityRejected({ plugin: "apiKeys", message: "unknown API key" }))
    const short = [...new Set(keys.filter((k) => k.short).map((k) => k.identity.login))]
    const warned = short.length === 0 ? Effect.void : Effect.logWarning(
      `apiKeys: ${short.length === 1 ? "the key" : "the keys"} of ${short.join(", ")} ${short.length === 1 ? "is" : "are"} ` +
        `shorter than ${MIN_KEY_LENGTH} characters and could be guessed; use a longer one (openssl rand -hex 16), or give its sha256:<hex>`
    )
    return Effect.as(warned, {
      identify: (request) => {
        const presented = presentedKey(request.headers)
        if (presented === undefined) return Effect.succeed(undefined)
        const digest = sha256(presented.key)
        // Every digest is compared, so the time taken does not tell which one (or whether one) matched.
        let found: Identity | undefined
        for (let i = 0; i < digests.length; i++) {
          if (timingSafeEqual(digests[i]!, digest) && found === undefined) found = identities[i]
        }
        if (found !== undefined) return Effect.succeed(found)
        // A JWT that is not one of our keys is another plugin's to judge.
        return presented.bearer && looksLikeJwt(presented.key) ? Effect.succeed(undefined) : unknownKey
      }
    })
  },
  describe: (options) => {
    const logins = Array.isArray(options.keys)
      ? options.keys.map((k) => Predicate.isRecord(k) ? String(k["login"]) : "?")
      : Object.values(options.keys as Record<string, HolderInput>).map((h) => Predicate.isRecord(h) ? String(h.login) : "?")
    return `apiKeys (${logins.length} key${logins.length === 1 ? "" : "s"}: ${[...new Set(logins)].join(", ")}; values hidden)`
  }
})

/** `sha256:<hex>` of a key, for configs that should not hold the live key. */
export const hashApiKey = (key: string): string => `sha256:${sha256(key).toString("hex")}`
