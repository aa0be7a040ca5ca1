/**
 * A `stdio()` connector: the upstream is a child process speaking MCP on its stdin and stdout.
 * It gets only the safe environment plus what the connector declares, and its stderr is kept
 * (scrubbed of the secrets it was given) for the log and for the error when it exits.
 * @module
 */
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import * as Redacted from "effect/Redacted"
import type { StdioConnector } from "../../config/model.js"
import { scrubSecrets } from "../../auth/scrubSecrets.js"
import type { TransportDefinition } from "./transport.js"

const STDERR_TAIL_LINES = 20

export const stdio = {
  name: "stdio",
  schemes: [],
  // A server that ignores server/discover is 2025-era once the probe times out: half the timeout
  // leaves the other half for initialize within the readiness deadline.
  probeTimeoutMs: (timeoutMs) => Math.max(1, Math.floor(timeoutMs / 2)),
  open: (connector, { onStderr }) => {
    const tail: Array<string> = []
    // The process may print its own secrets (a token it was given); its lines reach the log and
    // its error text.
    const envSecrets = Object.values(connector.env).map(Redacted.value).sort((a, b) => b.length - a.length)
    const transport = new StdioClientTransport({
      command: connector.command,
      args: [...connector.args],
      // Only the safe defaults (PATH, HOME, …) plus what the connector declares: the gateway's
      // own environment holds other upstreams' secrets.
      env: {
        ...getDefaultEnvironment(),
        ...Object.fromEntries(Object.entries(connector.env).map(([k, v]) => [k, Redacted.value(v)]))
      },
      ...(connector.cwd !== undefined && { cwd: connector.cwd }),
      stderr: "pipe"
    })
    let partial = ""
    transport.stderr?.on("data", (chunk: Buffer) => {
      const lines = (partial + chunk.toString("utf8")).split("\n")
      partial = lines.pop() ?? ""
      for (const line of lines) {
        if (line.trim() === "") continue
        const scrubbed = scrubSecrets(line, envSecrets)
        tail.push(scrubbed)
        if (tail.length > STDERR_TAIL_LINES) tail.shift()
        onStderr(scrubbed)
      }
    })
    const stderrTail = () => tail.slice(-3).join(" | ")
    return {
      transport,
      stderrTail,
      closedMessage: () => `process exited${stderrTail() ? ` (stderr: ${stderrTail()})` : ""}`
    }
  }
} as const satisfies TransportDefinition<StdioConnector>
