/**
 * JSON-RPC error bodies for HTTP-level refusals at `/v1/mcp` (no request id: the body was not
 * read or did not name one).
 * @module
 */
export const jsonRpcError = (status: number, code: number, message: string, headers?: Record<string, string>): Response =>
  Response.json({ jsonrpc: "2.0", error: { code, message }, id: null }, {
    status,
    ...(headers !== undefined && { headers })
  })
