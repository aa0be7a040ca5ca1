/**
 * How the v1 TS SDK client reaches the gateway as one caller: its own streamable HTTP
 * transport, or stdio through mcp-remote bridging to the gateway's URL.
 */
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { repoRoot } from "../../helpers/processes.js"
import type { ClientsGateway } from "./gateway.js"
import type { Caller } from "./v1Features.js"

export const bearer = (env: ClientsGateway, caller: Caller) => `Bearer ${env.keys[caller]}`

export const v1Transport = (env: ClientsGateway, caller: Caller) =>
  new StreamableHTTPClientTransport(new URL(env.url), { requestInit: { headers: { authorization: bearer(env, caller) } } })

/**
 * mcp-remote as a child process (closed with the client): `--transport http-only` and the API key
 * by `--header`, so it never falls back to SSE nor starts OAuth (no 401 ever reaches it), and
 * `MCP_REMOTE_CONFIG_DIR` in a temp dir instead of ~/.mcp-auth.
 */
export const mcpRemoteTransport = (env: ClientsGateway, configDir: string, caller: Caller) =>
  new StdioClientTransport({
    command: process.execPath,
    args: [
      `${repoRoot}node_modules/mcp-remote/dist/proxy.js`,
      env.url,
      "--transport",
      "http-only",
      "--header",
      `Authorization:${bearer(env, caller)}`
    ],
    env: { ...(process.env as Record<string, string>), MCP_REMOTE_CONFIG_DIR: configDir },
    stderr: "pipe"
  })
