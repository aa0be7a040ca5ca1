/**
 * The `--help` text of each command, written for people: what the command does, every option with
 * its default, an example, and where the docs are. `@effect/cli`'s generated help describes an
 * option by its type ("A user-defined piece of text.") and lists its own built-ins in full; this
 * replaces it. Plain text, so it needs no styling to strip when piped.
 * @module
 */
import { version } from "../version.js"

/** One command's help: its name, what it does, how it is called, its options and examples. */
interface CommandHelp {
  readonly summary: string
  readonly usage: string
  readonly description: string
  readonly options: ReadonlyArray<readonly [flag: string, text: string]>
  readonly examples: ReadonlyArray<readonly [command: string, text: string]>
}

const CONFIG_OPTION = [
  "-c, --config FILE",
  "the config to load (default: ./aperture.config.ts, then .mts, .js, .mjs, aperture.json, aperture.jsonc); .json/.jsonc files use the Aperture JSON shape"
] as const

const LOG_LEVEL_OPTION = [
  "--log-level LEVEL",
  "how much to log: all, trace, debug, info (default), warning, error, fatal, none"
] as const

const HELP_OPTION = ["-h, --help", "show this help"] as const

const COMMANDS: Readonly<Record<"start" | "check" | "init", CommandHelp>> = {
  start: {
    summary: "load, validate and serve the gateway",
    usage: "aperture start [-c FILE] [--host HOST] [--port N] [--log-level LEVEL]",
    description:
      "Serves MCP at http://HOST:PORT/v1/mcp. An invalid config is refused with every problem and its path, exit code 1. The file is watched (SIGHUP re-reads it): a valid change is applied without a restart, an invalid one logged and the running config kept. SIGINT/SIGTERM let calls in flight finish (up to 30 s), then exit 0.",
    options: [
      CONFIG_OPTION,
      ["--host HOST", "address to listen on (default: server.host in the config, else 127.0.0.1)"],
      ["--port N", "port to listen on, 0 for any free one (default: server.port in the config, else 8080)"],
      LOG_LEVEL_OPTION,
      HELP_OPTION
    ],
    examples: [
      ["aperture start", "serve ./aperture.config.ts on 127.0.0.1:8080"],
      ["aperture start --config aperture.json --port 9000", "serve an Aperture JSON config on port 9000"],
      ["aperture start --log-level debug", "also log upstream stderr, reconnects and list changes"]
    ]
  },
  check: {
    summary: "validate the config; print connectors, grants and warnings",
    usage: "aperture check [--config FILE] [--as LOGIN [--groups A,B] [--tags X,Y]]",
    description:
      "Validates the config without contacting any upstream and prints its connectors, exposed names, identity plugins, grants and warnings. Secrets are never printed. Exit code 1 when the config is invalid (every problem with its path), 0 otherwise.",
    options: [
      CONFIG_OPTION,
      ["--as LOGIN", "also print what this caller may see and call, connector by connector"],
      ["--groups A,B", "with --as: the caller's groups, comma-separated"],
      ["--tags X,Y", "with --as: the caller's tags, comma-separated"],
      HELP_OPTION
    ],
    examples: [
      ["aperture check", "validate ./aperture.config.ts"],
      ["aperture check --as alice@example.com --groups analysts", "what alice, in group analysts, may reach"]
    ]
  },
  init: {
    summary: "write a starter aperture.config.ts in this folder",
    usage: "aperture init",
    description:
      "Writes aperture.config.ts (the MCP reference server behind the gateway, loopback identity, one grant), and a package.json and tsconfig.json where there are none. Never overwrites: with a config already there it writes nothing and exits with code 2.",
    options: [HELP_OPTION],
    examples: [["npx aperture-gateway init && npm install && npx aperture start", "a gateway in an empty folder"]]
  }
}

/** Lines of help stay within this many columns (a terminal's default 80, less a margin). */
const COLUMNS = 78

/** `text` broken into lines of at most `width` characters, at spaces. */
const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line === "" ? word : `${line} ${word}`
  }
  return [...lines, line]
}

/** Rows aligned in a column after the longest left cell; long right cells wrap under themselves. */
const table = (rows: ReadonlyArray<readonly [string, string]>): Array<string> => {
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  const indent = " ".repeat(2 + width)
  return rows.flatMap(([left, right]) => {
    // A row whose left cell is too wide to leave room puts its text on the next lines.
    if (2 + width > COLUMNS / 2) return [`  ${left}`, ...wrap(right, COLUMNS - 6).map((line) => `      ${line}`)]
    const [first, ...rest] = wrap(right, COLUMNS - indent.length)
    return [`  ${left.padEnd(width)}${first}`, ...rest.map((line) => indent + line)]
  })
}

/** `aperture --help`: every command, the global options, examples. */
export const mainHelp = (): string =>
  [
    `aperture ${version}: an MCP connector gateway`,
    "",
    "Usage: aperture <command> [options]",
    "",
    "Commands:",
    ...table(Object.entries(COMMANDS).map(([name, command]) => [name, command.summary])),
    "",
    "Options:",
    ...table([LOG_LEVEL_OPTION, HELP_OPTION, ["--version", "print the version"]]),
    "",
    "Examples:",
    ...table([
      ["npx aperture-gateway init", "write a starter config in an empty folder"],
      ["aperture check", "validate ./aperture.config.ts"],
      ["aperture start --port 9000", "serve it on 127.0.0.1:9000"]
    ]),
    "",
    "Run `aperture <command> --help` for a command's options.",
    "Docs: README.md and docs/ of the aperture-gateway package (docs/cli.md for these commands)."
  ].join("\n")

/** `aperture <command> --help`. */
export const commandHelp = (name: keyof typeof COMMANDS): string => {
  const command = COMMANDS[name]
  return [
    `aperture ${name}: ${command.summary}`,
    "",
    `Usage: ${command.usage}`,
    "",
    ...wrap(command.description, COLUMNS),
    "",
    "Options:",
    ...table(command.options),
    "",
    "Examples:",
    ...table(command.examples)
  ].join("\n")
}

const isCommand = (arg: string): arg is keyof typeof COMMANDS => Object.hasOwn(COMMANDS, arg)

/**
 * The help `args` (the command line after `aperture`) ask for, or `undefined` when they ask to
 * run something: `--help`/`-h` anywhere, `help [command]`, or nothing at all.
 */
export const helpRequested = (args: ReadonlyArray<string>): string | undefined => {
  if (args.length === 0) return mainHelp()
  if (args[0] === "help") return args[1] !== undefined && isCommand(args[1]) ? commandHelp(args[1]) : mainHelp()
  if (!args.includes("--help") && !args.includes("-h")) return undefined
  const command = args.find(isCommand)
  return command === undefined ? mainHelp() : commandHelp(command)
}
