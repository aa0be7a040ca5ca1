#!/usr/bin/env node
/**
 * `aperture start | check [--as <login> [--groups a,b] [--tags x]] | init`. Exit codes: 0 ok, 1 invalid
 * config, cannot listen (port in use) or cluster unreachable (Redis), 2 usage (init: a config is
 * already there).
 * @module
 */
import { readFile } from "node:fs/promises"
import { Command, Options, ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Aperture from "../Aperture.js"
import { ConfigFile, hashOf } from "../config/ConfigFile.js"
import { type ConfigError, resolveConfigPath } from "../config/load.js"
import { type ApertureConfig, formatIssue } from "../config/model.js"
import { withoutTracing } from "../http/tracing.js"
import { version } from "../version.js"
import { accessReport, checkReport } from "./checkReport.js"
import { ConfigWatch } from "./configWatch.js"
import { helpRequested } from "./help.js"
import { init as initFolder, initReport } from "./init.js"
import { withPlainConsoleWhereUnwanted } from "./plainConsole.js"

/** Exit codes of the `aperture` command. */
export const ExitCode = { ok: 0, invalidConfig: 1, cannotListen: 1, clusterUnavailable: 1, usage: 2 } as const

// Why the command stops short. Each is reported to the user where it happens; its exit code is
// decided in one place ({@link exitCodeOf}).

/** The config could not be loaded or is invalid (`cause`: the `ConfigError`). */
class InvalidConfig extends Data.TaggedError("InvalidConfig")<{ readonly cause: ConfigError }> {}

/** The gateway could not listen where it was told (`cause`: the `ListenFailed`). */
class CannotListen extends Data.TaggedError("CannotListen")<{ readonly cause: unknown }> {}

/** The configured Redis could not be reached at start (`cause`: the `ClusterUnavailable`). */
class CannotReachCluster extends Data.TaggedError("CannotReachCluster")<{ readonly cause: unknown }> {}

/** The command line is not one the command takes. */
class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string; readonly cause?: unknown }> {}

type CliFailure = InvalidConfig | CannotListen | CannotReachCluster | UsageError

const exitCodeOf = (failure: CliFailure): number => {
  switch (failure._tag) {
    case "InvalidConfig":
      return ExitCode.invalidConfig
    case "CannotListen":
      return ExitCode.cannotListen
    case "CannotReachCluster":
      return ExitCode.clusterUnavailable
    case "UsageError":
      return ExitCode.usage
  }
}

const isCliFailure = (error: unknown): error is CliFailure =>
  error instanceof InvalidConfig || error instanceof CannotListen || error instanceof CannotReachCluster ||
  error instanceof UsageError

const configOption = Options.text("config").pipe(
  Options.withAlias("c"),
  Options.withDescription("config file (default ./aperture.config.ts; .json/.jsonc in the Aperture JSON shape)"),
  Options.optional
)

const reportConfigError = (error: ConfigError) =>
  Effect.gen(function*() {
    if (error._tag === "ConfigInvalid") {
      yield* Console.error(`aperture: invalid config${error.source ? ` ${error.source}` : ""} (${error.issues.length} ${error.issues.length === 1 ? "problem" : "problems"}):`)
      for (const issue of error.issues) yield* Console.error(`  ${formatIssue(issue)}`)
    } else {
      yield* Console.error(`aperture: ${error.message}`)
    }
    return yield* new InvalidConfig({ cause: error })
  })

const load = (file: Option.Option<string>) =>
  Aperture.loadConfig({ cwd: process.cwd(), file: Option.getOrUndefined(file) }).pipe(Effect.catchAll(reportConfigError))

const start = Command.make("start", {
  config: configOption,
  host: Options.text("host").pipe(Options.withDescription("address to listen on (default 127.0.0.1)"), Options.optional),
  port: Options.integer("port").pipe(Options.withDescription("port to listen on (default 8080)"), Options.optional)
}, ({ config, host, port }) =>
  Effect.gen(function*() {
    const file = yield* resolveConfigPath(process.cwd(), Option.getOrUndefined(config)).pipe(Effect.catchAll(reportConfigError))
    // The hash of what is loaded, read first: a change made while loading is reloaded by the watcher.
    const startedWith = yield* Effect.option(Effect.tryPromise(() => readFile(file, "utf8")))
    const loaded = yield* Aperture.loadConfigFile(file).pipe(Effect.catchAll(reportConfigError))
    if (Option.isSome(port) && (port.value < 0 || port.value > 65535)) {
      const message = `--port ${port.value} is not a port number (0-65535)`
      yield* Console.error(`aperture: ${message}`)
      return yield* new UsageError({ message })
    }
    // Applied to every config the file gives, so a reload does not see --port as a change.
    const overrides = (loaded: ApertureConfig): ApertureConfig => ({
      ...loaded,
      server: {
        ...loaded.server,
        host: Option.getOrElse(host, () => loaded.server.host),
        port: Option.getOrElse(port, () => loaded.server.port)
      }
    })
    const resolved = overrides(loaded)
    const configFile = Layer.effect(
      ConfigFile,
      Aperture.configFileOf({ path: file, overrides, startedWith: Option.getOrUndefined(Option.map(startedWith, hashOf)) })
    )
    for (const warning of resolved.warnings) yield* Effect.logWarning(formatIssue(warning))
    // No tracer is installed here, so spans would go nowhere, and making them is a visible share
    // of a tools/call's CPU (bench/README.md). A host that wants spans embeds Aperture.layer.
    // The file is watched (and SIGHUP taken) for as long as the gateway runs; `/api/config` edits it.
    const gateway = ConfigWatch.pipe(Layer.provideMerge(Aperture.layer(resolved)), Layer.provide(configFile))
    return yield* Layer.launch(gateway).pipe(
      withoutTracing,
      Effect.catchTag("ListenFailed", (error) =>
        Effect.zipRight(
          Console.error(`aperture: ${error.message}; pass ${error.reason === "address" ? "--host" : "--port"}`),
          Effect.fail(new CannotListen({ cause: error }))
        )),
      Effect.catchTag("ClusterUnavailable", (error) =>
        Effect.zipRight(
          Console.error(`aperture: ${error.message}; is Redis running there?`),
          Effect.fail(new CannotReachCluster({ cause: error }))
        ))
    )
  })).pipe(Command.withDescription("load, validate and serve the gateway"))

const listOption = (name: string, description: string) =>
  Options.text(name).pipe(Options.withDescription(description), Options.optional)

const namesIn = (list: Option.Option<string>) =>
  Option.match(list, { onNone: () => [], onSome: (s) => s.split(",").map((x) => x.trim()).filter((x) => x !== "") })

const check = Command.make("check", {
  config: configOption,
  as: listOption("as", "also print what this login may see and call"),
  groups: listOption("groups", "with --as: the caller's groups, comma-separated"),
  tags: listOption("tags", "with --as: the caller's tags, comma-separated")
}, ({ as, config, groups, tags }) =>
  Effect.gen(function*() {
    if (Option.isNone(as) && (Option.isSome(groups) || Option.isSome(tags))) {
      const message = "--groups and --tags describe the caller named by --as; add --as <login>"
      yield* Console.error(`aperture: ${message}`)
      return yield* new UsageError({ message })
    }
    const loaded = yield* load(config)
    yield* Console.log(checkReport(loaded))
    if (Option.isSome(as)) {
      yield* Console.log("")
      yield* Console.log(accessReport(loaded, { login: as.value, groups: namesIn(groups), tags: namesIn(tags), via: "check" }))
    }
  })).pipe(Command.withDescription("validate the config and print connectors, grants and warnings (--as: what one caller may reach)"))

const init = Command.make("init", {}, () =>
  initFolder(process.cwd()).pipe(
    Effect.flatMap((result) => Console.log(initReport(result))),
    Effect.catchTag("ConfigExists", (error) =>
      Effect.zipRight(Console.error(`aperture: ${error.message}`), Effect.fail(new UsageError({ message: error.message, cause: error }))))
  )).pipe(Command.withDescription("write a starter aperture.config.ts (and a package.json and tsconfig.json where there are none) in this folder"))

const aperture = Command.make("aperture").pipe(
  Command.withDescription("Aperture: an MCP connector gateway"),
  Command.withSubcommands([start, check, init])
)

const cli = Command.run(aperture, { name: "aperture", version })

// Our own help text (help.ts) instead of @effect/cli's generated one; everything else is parsed by it.
const help = helpRequested(process.argv.slice(2))

const program = Effect.suspend(() => help === undefined ? cli(process.argv) : Console.log(help)).pipe(
  Effect.catchIf(ValidationError.isValidationError, (error) =>
    error._tag === "HelpRequested" ? Effect.void : Effect.fail(new UsageError({ message: error._tag, cause: error }))),
  withPlainConsoleWhereUnwanted,
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return onExit(ExitCode.ok)
    const failure = Cause.failureOption(exit.cause)
    if (failure._tag === "Some" && isCliFailure(failure.value)) return onExit(exitCodeOf(failure.value))
    console.error(Cause.pretty(exit.cause))
    onExit(1)
  }
})
