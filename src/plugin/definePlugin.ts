/**
 * The plugin kernel auth and identity plugins share: a named plugin whose options are checked
 * by a Schema. `define` turns a spec into a function from options (as users write them) to a
 * plugin value; `schema` decodes such a value in the config into its resolved form (the spec,
 * the decoded options and the options as written), with every problem at its path.
 * @module
 */
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/** What every plugin spec has. */
export interface PluginSpec<A, I> {
  /** Short name, e.g. `bearer`. */
  readonly name: string
  readonly options: Schema.Schema<A, I>
  /** One line for `aperture check`; must never include a secret. */
  readonly describe?: (options: I) => string
}

/** A plugin with its options, as written in `aperture.config.ts`: the kind's type id holds the spec. */
export type Plugin<Id extends symbol, Spec, I> = { readonly [K in Id]: Spec } & {
  readonly name: string
  readonly options: I
}

/** A plugin whose options passed their Schema: what the decoded config holds. */
export interface ResolvedPlugin<Spec> {
  readonly spec: Spec
  /** The decoded options, as `make` takes them. */
  readonly options: unknown
  /** The options as written (secrets still as `env("…")` references), for describing. */
  readonly input: unknown
}

/** One kind of plugin (auth, identity): how to define, recognise, decode and describe it. */
export interface PluginKind<Id extends symbol, Spec extends PluginSpec<any, any>> {
  readonly define: <A, I, S extends Spec & PluginSpec<A, I>>(spec: S) => (options: I) => Plugin<Id, S, I>
  readonly is: (u: unknown) => u is Plugin<Id, Spec, unknown>
  readonly schema: Schema.Schema<ResolvedPlugin<Spec>, Plugin<Id, Spec, unknown>>
  readonly describe: (plugin: ResolvedPlugin<Spec>) => string
}

/**
 * Makes a plugin kind. `typeId` marks its values (a `Symbol.for`, so a config loaded through
 * another copy of the package still is recognised); `expected` is the message for a value that
 * is not one of its plugins.
 */
export const pluginKind = <Id extends symbol, Spec extends PluginSpec<any, any>>(kind: {
  readonly typeId: Id
  readonly identifier: string
  readonly expected: string
}): PluginKind<Id, Spec> => {
  const { typeId } = kind
  const is = (u: unknown): u is Plugin<Id, Spec, unknown> => Predicate.hasProperty(u, typeId) && Predicate.isObject(u[typeId])
  const schema = Schema.declare<ResolvedPlugin<Spec>, Plugin<Id, Spec, unknown>, readonly []>([], {
    decode: () => (input, parseOptions, ast) => {
      if (!is(input)) return ParseResult.fail(new ParseResult.Type(ast, input, kind.expected))
      const spec = input[typeId] as Spec
      return ParseResult.decodeUnknown(spec.options)(input.options, parseOptions).pipe(
        Effect.map((options): ResolvedPlugin<Spec> => ({ spec, options, input: input.options }))
      )
    },
    encode: () => (resolved, _options, ast) =>
      ParseResult.fail(new ParseResult.Forbidden(ast, resolved, `${kind.identifier} values cannot be encoded`))
  }, { identifier: kind.identifier })
  return {
    define: (spec) => (options) => ({ [typeId]: spec, name: spec.name, options }) as never,
    is,
    schema,
    describe: (plugin) => plugin.spec.describe?.(plugin.input) ?? plugin.spec.name
  }
}
