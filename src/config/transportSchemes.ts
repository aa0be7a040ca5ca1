/**
 * The URL schemes an `mcp({ url })` connector accepts: the schemes of the transports registered in
 * `upstream/transports/registry.ts`. Written here, not derived there, because decoding (config/)
 * sits below upstream/ and may not import it; the registry is type-checked against this list both
 * ways, so a scheme without a transport, or a transport's scheme missing here, does not compile.
 * @module
 */
export const MCP_URL_SCHEMES = ["http:", "https:", "ws:", "wss:"] as const

export type McpUrlScheme = typeof MCP_URL_SCHEMES[number]
