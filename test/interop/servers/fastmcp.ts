/**
 * Runs `fastmcp_server.py` (a real FastMCP server from the suite's venv) as a child process.
 */
import { fileURLToPath } from "node:url"
import { spawnProcess } from "../../helpers/processes.js"
import { ensurePythonEnv } from "../pythonEnv.js"

const script = fileURLToPath(new URL("./fastmcp_server.py", import.meta.url))

export interface FastMcpServer {
  /** The MCP endpoint: `/mcp` (streamable HTTP) or `/sse` (legacy HTTP+SSE). */
  readonly url: string
  readonly origin: string
  /** What the server has seen so far (its `GET /debug/seen`). */
  readonly seen: () => Promise<{
    readonly authorizations: ReadonlyArray<string>
    readonly slow: { readonly started: number; readonly completed: number; readonly cancelled: number }
  }>
  readonly output: () => string
  readonly close: () => Promise<void>
}

export const startFastMcp = async (options: { readonly transport: "http" | "sse"; readonly token?: string }): Promise<FastMcpServer> => {
  const python = await ensurePythonEnv()
  const child = spawnProcess(python, [script, options.transport], {
    PYTHONUNBUFFERED: "1",
    ...(options.token !== undefined && { APERTURE_TEST_TOKEN: options.token })
  })
  const line = await child.waitFor(/LISTENING (\d+)/, 60_000)
  const origin = `http://127.0.0.1:${line.split(" ")[1]}`
  // The socket is bound before uvicorn starts: wait until it answers HTTP.
  for (let tries = 0; ; tries++) {
    const ok = await fetch(`${origin}/debug/seen`).then((r) => r.ok, () => false)
    if (ok) break
    if (tries > 200) throw new Error(`FastMCP did not start:\n${child.output()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url: `${origin}/${options.transport === "sse" ? "sse" : "mcp"}`,
    origin,
    seen: async () => (await (await fetch(`${origin}/debug/seen`)).json()) as never,
    output: child.output,
    close: async () => void (await child.kill())
  }
}
