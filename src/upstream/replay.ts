/**
 * Which upstream requests may be sent again after a 401 and a credential refresh. A 401
 * normally means the upstream refused the credential before acting, but that is the upstream's
 * promise, not ours: a server (or a proxy in front of it) could have run a tool and then
 * answered 401. So only requests whose repetition has no effect of its own are replayed;
 * `tools/call` (and any method not known to be safe) is not: the credential is refreshed and
 * the caller gets an error that says to call again.
 * @module
 */

/** JSON-RPC methods that read, negotiate or subscribe: sending one twice changes nothing. */
const SAFE_METHODS: ReadonlySet<string> = new Set([
  "initialize",
  "ping",
  "server/discover",
  "tools/list",
  "prompts/list",
  "prompts/get",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "subscriptions/listen",
  "completion/complete",
  "logging/setLevel",
  "tasks/get",
  "tasks/list",
  "tasks/result"
])

/** The JSON-RPC method of a request body, `null` for a notification or response, undefined when unreadable. */
export const jsonRpcMethod = (body: string): string | null | undefined => {
  try {
    const message: unknown = JSON.parse(body)
    if (typeof message !== "object" || message === null || Array.isArray(message)) return undefined
    const method = (message as { method?: unknown }).method
    const hasId = "id" in message
    if (typeof method === "string") return hasId ? method : null
    return hasId ? null : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether an HTTP request to an MCP upstream may be replayed after a 401. `body` is the body
 * when it is in memory; a streamed body can't be replayed at all.
 */
export const safeToReplay = (method: string, body: string | undefined, hasBody: boolean): boolean => {
  if (!hasBody) return method === "GET" || method === "HEAD" || method === "DELETE"
  if (body === undefined) return false
  const rpc = jsonRpcMethod(body)
  // Notifications and responses (to the upstream's own requests) have no effect when refused.
  return rpc === null || (rpc !== undefined && SAFE_METHODS.has(rpc))
}
