/**
 * The audit trail: one JSON line per decision on a tool call, resource read, prompt get or
 * HTTP proxy request — who, what, allowed or denied and by which grant, how long, how it ended.
 *
 * `record` is a plain function called where the decision is made: one `JSON.stringify` and
 * one buffered write, no fiber. Callers check `enabled` first, so nothing is built when the
 * audit log is off. Arguments are left out unless `audit.arguments` is `"redacted"`.
 * @module
 */
import { createWriteStream, mkdirSync } from "node:fs"
import { dirname } from "node:path"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import { GatewayConfig } from "../config/GatewayConfig.js"
import type { Category } from "../config/grantPattern.js"
import type { Decision } from "../grants/policy.js"
import type { Identity } from "../plugin/IdentityPlugin.js"
import { redact } from "./redact.js"

/**
 * How the request ended: `ok`; `tool_error` (a result with `isError`); `input_required` (a
 * multi-round result asking the caller); `error` (a JSON-RPC error, a failed upstream, or an
 * HTTP status ≥ 400 from a proxied API); `cancelled` (by the caller); `denied` (no grant);
 * `unavailable` (allowed, but its connector is not serving: `reason` says why).
 */
export type AuditOutcome = "ok" | "tool_error" | "input_required" | "error" | "cancelled" | "denied" | "unavailable"

/** One decision, as the place that made it knows it. */
export interface AuditEvent {
  readonly identity: Identity
  /** `undefined` when the name belongs to no connector (a denied unknown name). */
  readonly connector: string | undefined
  readonly category: Category
  /** The name as the caller used it: exposed tool/prompt name, exposed URI, or proxied path (no query). */
  readonly exposed: string
  /** The upstream's own name or URI, or the path sent to the proxied API. */
  readonly upstream: string | undefined
  /** The grant that allowed it; `undefined`: denied. */
  readonly grant: Decision | undefined
  /** `performance.now()` when the decision was made. */
  readonly startedAt: number
  readonly outcome: AuditOutcome
  /** JSON-RPC error code, for `error`. */
  readonly errorCode?: number | undefined
  /** HTTP method and response status, for `proxy`. */
  readonly method?: string | undefined
  readonly status?: number | undefined
  /** The call's arguments; written only with `audit.arguments: "redacted"`, and then redacted. */
  readonly arguments?: unknown
  /** Why it could not be served, for `unavailable` (e.g. `connector github is down: connection refused …`). */
  readonly reason?: string | undefined
}

/** The line as written. */
export interface AuditLine {
  readonly time: string
  readonly login: string
  readonly via: string
  readonly displayName?: string
  readonly connector: string | null
  readonly category: Category
  readonly exposed: string
  readonly upstream: string | null
  readonly decision: "allowed" | "denied"
  readonly grant: { readonly index: number; readonly pattern: string } | null
  readonly durationMs: number
  readonly outcome: AuditOutcome
  readonly errorCode?: number
  readonly method?: string
  readonly status?: number
  readonly reason?: string
  readonly arguments?: unknown
}

/** Which recent lines to read back; every field given must match. */
export interface AuditQuery {
  readonly login?: string | undefined
  readonly connector?: string | undefined
  readonly decision?: "allowed" | "denied" | undefined
  /** At most this many, newest first. Default and cap: {@link RECENT_AUDIT_LINES}. */
  readonly limit?: number | undefined
}

/** How many of the latest lines are kept in memory for the status page (the file keeps them all). */
export const RECENT_AUDIT_LINES = 500

export interface Audit {
  /** Whether lines are written at all: check before building an event. */
  readonly enabled: boolean
  /** Writes one line for one decision. Never throws. */
  readonly record: (event: AuditEvent) => void
  /** The latest lines written (at most {@link RECENT_AUDIT_LINES}), newest first, filtered. */
  readonly recent: (query: AuditQuery) => ReadonlyArray<AuditLine>
}

/** Builds the line (exported for tests and for anything that writes lines elsewhere). */
export const auditLine = (event: AuditEvent, withArguments: boolean, now = performance.now()): AuditLine => {
  const durationMs = Math.max(0, Math.round((now - event.startedAt) * 1000) / 1000)
  return {
    time: new Date(Date.now() - durationMs).toISOString(),
    login: event.identity.login,
    via: event.identity.via,
    ...(event.identity.displayName !== undefined && { displayName: event.identity.displayName }),
    connector: event.connector ?? null,
    category: event.category,
    exposed: event.exposed,
    upstream: event.upstream ?? null,
    decision: event.grant === undefined ? "denied" : "allowed",
    grant: event.grant === undefined ? null : { index: event.grant.grantIndex, pattern: event.grant.pattern },
    durationMs,
    outcome: event.outcome,
    ...(event.errorCode !== undefined && { errorCode: event.errorCode }),
    ...(event.method !== undefined && { method: event.method }),
    ...(event.status !== undefined && { status: event.status }),
    ...(event.reason !== undefined && { reason: event.reason }),
    ...(withArguments && event.arguments !== undefined && { arguments: redact(event.arguments) })
  }
}

const disabled: Audit = { enabled: false, record: () => {}, recent: () => [] }

/**
 * The latest lines in a fixed ring: a slot overwritten per line, nothing else allocated, so the
 * call path pays one array store for the status page's audit trail.
 */
const recentLines = () => {
  const ring = new Array<AuditLine | undefined>(RECENT_AUDIT_LINES)
  let next = 0
  const add = (line: AuditLine) => {
    ring[next % RECENT_AUDIT_LINES] = line
    next++
  }
  const read = (query: AuditQuery): ReadonlyArray<AuditLine> => {
    const limit = Math.min(query.limit ?? RECENT_AUDIT_LINES, RECENT_AUDIT_LINES)
    const found: Array<AuditLine> = []
    for (let i = next - 1; i >= 0 && i >= next - RECENT_AUDIT_LINES && found.length < limit; i--) {
      const line = ring[i % RECENT_AUDIT_LINES]
      if (line === undefined) continue
      if (query.login !== undefined && line.login !== query.login) continue
      if (query.connector !== undefined && line.connector !== query.connector) continue
      if (query.decision !== undefined && line.decision !== query.decision) continue
      found.push(line)
    }
    return found
  }
  return { add, read }
}

export class AuditLog extends Effect.Service<AuditLog>()("aperture/AuditLog", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const settings = config.audit
    if (settings === undefined) return disabled
    const withArguments = settings.arguments === "redacted"

    let write: (line: string) => void
    if (settings.to.kind === "stdout") {
      write = (line) => void process.stdout.write(line)
    } else {
      const file = settings.to.path
      const stream = yield* Effect.acquireRelease(
        Effect.sync(() => {
          mkdirSync(dirname(file), { recursive: true })
          // Appended, never truncated; readable by the owner only (it names who did what).
          return createWriteStream(file, { flags: "a", mode: 0o600 })
        }),
        (stream) =>
          Effect.async<void>((resume) => {
            stream.end(() => resume(Effect.void))
          })
      )
      // A failing disk must not take calls down with it: say so once per error, keep serving.
      // Logged on this layer's runtime, so an embedding host's logger gets the line.
      const runtime = yield* Effect.runtime<never>()
      stream.on("error", (error) => Runtime.runFork(runtime)(Effect.logError(`audit log ${file}: ${error.message}`)))
      write = (line) => void stream.write(line)
    }

    const recent = recentLines()
    const audit: Audit = {
      enabled: true,
      record: (event) => {
        try {
          const line = auditLine(event, withArguments)
          write(`${JSON.stringify(line)}\n`)
          recent.add(line)
        } catch {
          // Arguments that cannot be serialised (a BigInt…) do not cost the line, nor the call.
          const without = auditLine(event, false)
          write(`${JSON.stringify(without)}\n`)
          recent.add(without)
        }
      },
      recent: recent.read
    }
    return audit
  })
}) {}
