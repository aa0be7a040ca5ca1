/**
 * Reading a Bearer credential (RFC 6750 §2.1) off a request, shared by the token plugins.
 * @module
 */

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or undefined. */
export const bearerToken = (authorization: string | undefined): string | undefined => {
  if (authorization === undefined || authorization.length < 8) return undefined
  if (authorization.slice(0, 7).toLowerCase() !== "bearer ") return undefined
  const token = authorization.slice(7).trim()
  return token === "" ? undefined : token
}

const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/** Whether a token has the shape of a signed JWT (three base64url parts); says nothing of its validity. */
export const looksLikeJwt = (token: string): boolean => JWS_COMPACT.test(token)
