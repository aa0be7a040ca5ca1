/**
 * The gateway's public paths, in one place: the routes serve them, and identity, the proxy and
 * the admin pages write URLs with them.
 * @module
 */

/** The MCP endpoint, and the resource a token is for unless an identity plugin names another. */
export const MCP_PATH = "/v1/mcp"

/** HTTP connectors are served beneath this: `/v1/connectors/<id>/<path>`. */
export const CONNECTORS_PREFIX = "/v1/connectors/"

/** Where RFC 9728 protected-resource metadata is served. */
export const PROTECTED_RESOURCE_PATH = "/.well-known/oauth-protected-resource"

/** Per-user OAuth callbacks: `/aperture/auth/<id>/callback` (the redirect URI providers send browsers to). */
export const CALLBACK_PREFIX = "/aperture/auth/"
