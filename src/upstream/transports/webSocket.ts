/**
 * MCP over WebSocket (subprotocol `mcp`, one JSON-RPC message per text frame) for `ws:`/`wss:`
 * upstreams that only offer that; the credential goes in the upgrade request's headers. Uses the
 * `ws` package: Node 20 has no global WebSocket.
 * @module
 */
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import WebSocket from "ws"
import { SentCredentials } from "../../auth/scrubSecrets.js"
import { CredentialUnavailable } from "../authorizedFetch.js"
import type { UrlTransport } from "./transport.js"

export const webSocket = {
  name: "websocket",
  schemes: ["ws:", "wss:"],
  open: (url, { credential, runtime }) => {
    const sentCredentials = credential === undefined ? undefined : new SentCredentials()
    const headers = async () => {
      if (credential === undefined) return {}
      const outcome = await Runtime.runPromise(runtime)(Effect.either(credential.authorize({
        url,
        method: "GET",
        headers: new Headers(),
        body: undefined
      })))
      if (outcome._tag === "Left") throw new CredentialUnavailable(outcome.left)
      sentCredentials?.note(outcome.right)
      return { ...outcome.right.headers }
    }
    return { transport: new WebSocketClientTransport(url, headers), sentCredentials }
  }
} as const satisfies UrlTransport

export class WebSocketClientTransport implements Transport {
  private socket: WebSocket | undefined
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: <T extends JSONRPCMessage>(message: T) => void

  constructor(private readonly url: URL, private readonly headers: () => Promise<Record<string, string>>) {}

  async start(): Promise<void> {
    if (this.socket) throw new Error("WebSocketClientTransport already started")
    const headers = await this.headers()
    await new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(this.url, "mcp", { headers, followRedirects: false, handshakeTimeout: 30_000 })
      this.socket = socket
      socket.once("open", () => resolve())
      socket.once("unexpected-response", (_req, res) => {
        reject(new Error(`WebSocket upgrade refused: HTTP ${res.statusCode}`))
        socket.terminate()
      })
      socket.on("error", (error) => {
        reject(error)
        this.onerror?.(error)
      })
      socket.on("close", () => this.onclose?.())
      socket.on("message", (data, isBinary) => {
        if (isBinary) return this.onerror?.(new Error("unexpected binary WebSocket frame"))
        let message: JSONRPCMessage
        try {
          message = JSON.parse(data.toString()) as JSONRPCMessage
        } catch (error) {
          return this.onerror?.(error instanceof Error ? error : new Error(String(error)))
        }
        this.onmessage?.(message)
      })
    })
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = this.socket
      if (socket === undefined || socket.readyState !== WebSocket.OPEN) return reject(new Error("WebSocket not connected"))
      socket.send(JSON.stringify(message), (error) => (error ? reject(error) : resolve()))
    })
  }

  async close(): Promise<void> {
    this.socket?.close()
  }
}
