/**
 * What a new config changes against the running one: which connectors were added, removed or
 * changed, whether the grants or identity plugins changed, and which settings only a restart can
 * apply. Decided on settings, not object identity: a reloaded file decodes into new objects even
 * where nothing changed.
 * @module
 */
import { createHash } from "node:crypto"
import * as Redacted from "effect/Redacted"
import type { ApertureConfig, Connector } from "./model.js"

/**
 * Top-level settings read once, when the gateway starts (the listening socket, the cluster's
 * Redis, the state directory and its encryption key, the audit sink): a change is reported as
 * needing a restart and the running value is kept. Any top-level setting not named in
 * {@link LIVE_SETTINGS} is treated this way, so a setting added later is safe by default.
 */
const LIVE_SETTINGS: ReadonlySet<string> = new Set(["connectors", "identity", "grants", "warnings", "source", "describe"])

/** Ids for functions and symbols, which have no settings to compare: the same one is the same. */
const opaqueIds = new WeakMap<object, number>()
let nextOpaqueId = 0
const opaqueId = (value: object) => {
  let id = opaqueIds.get(value)
  if (id === undefined) opaqueIds.set(value, id = ++nextOpaqueId)
  return id
}

/**
 * A stable text of a decoded setting, for comparison only. A secret enters as its SHA-256, so the
 * text (which stays in this process and is never logged) holds no secret either.
 */
export const settingsFingerprint = (value: unknown): string => JSON.stringify(normalize(value, new Set()))

const normalize = (value: unknown, seen: Set<object>): unknown => {
  if (value === null || value === undefined) return null
  if (typeof value === "function") return { fn: opaqueId(value) }
  if (typeof value === "bigint") return value.toString()
  if (typeof value !== "object") return value
  if (Redacted.isRedacted(value)) return { secret: createHash("sha256").update(String(Redacted.value(value))).digest("hex") }
  if (value instanceof URL || value instanceof RegExp) return String(value)
  if (seen.has(value)) return { cycle: opaqueId(value) }
  seen.add(value)
  try {
    if (Array.isArray(value)) return value.map((v) => normalize(v, seen))
    if (value instanceof Map) return [...value.entries()].map(([k, v]) => [normalize(k, seen), normalize(v, seen)])
    if (value instanceof Set) return [...value].map((v) => normalize(v, seen))
    const toJSON = (value as { toJSON?: unknown }).toJSON
    if (typeof toJSON === "function" && Object.getPrototypeOf(value) !== Object.prototype) {
      return normalize(toJSON.call(value), seen)
    }
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) out[key] = normalize((value as Record<string, unknown>)[key], seen)
    return out
  } finally {
    seen.delete(value)
  }
}

/** A connector's settings, without its position in the list (moving one is no change). */
const connectorFingerprint = ({ index: _index, ...settings }: Connector) => settingsFingerprint(settings)

/** Per-user OAuth connectors are registered with the token store at start (auth/UserAuth.ts). */
const isPerUser = (connector: Connector | undefined) => connector?.kind === "mcp" && connector.userAuth !== undefined

export interface ConfigChange {
  readonly previous: ApertureConfig
  /** The config now running: the new one, with the restart-only settings kept from `previous`. */
  readonly next: ApertureConfig
  readonly connectors: {
    readonly added: ReadonlyArray<Connector>
    readonly removed: ReadonlyArray<Connector>
    /** The new settings of connectors whose settings changed. */
    readonly changed: ReadonlyArray<Connector>
  }
  readonly grantsChanged: boolean
  readonly identityChanged: boolean
  /** Settings that changed but are kept as running until a restart (`server.port`, `cluster`, `connectors.crm`). */
  readonly needsRestart: ReadonlyArray<string>
}

/** Whether the change changes anything that runs. */
export const changesAnything = (change: ConfigChange) =>
  change.connectors.added.length + change.connectors.removed.length + change.connectors.changed.length > 0 ||
  change.grantsChanged || change.identityChanged

/** Compares `next` with `previous` and says what of it can be applied now. */
export const planChange = (previous: ApertureConfig, next: ApertureConfig): ConfigChange => {
  const needsRestart: Array<string> = []
  const kept: Record<string, unknown> = {}
  const keys = new Set([...Object.keys(previous), ...Object.keys(next)])
  for (const key of keys) {
    if (LIVE_SETTINGS.has(key)) continue
    const before = (previous as unknown as Record<string, unknown>)[key]
    const after = (next as unknown as Record<string, unknown>)[key]
    kept[key] = before
    if (key === "server" && before !== undefined && after !== undefined) {
      const b = before as Record<string, unknown>
      const a = after as Record<string, unknown>
      for (const setting of new Set([...Object.keys(b), ...Object.keys(a)])) {
        if (settingsFingerprint(b[setting]) !== settingsFingerprint(a[setting])) needsRestart.push(`server.${setting}`)
      }
    } else if (settingsFingerprint(before) !== settingsFingerprint(after)) {
      needsRestart.push(key)
    }
  }

  const running = new Map(previous.connectors.map((c) => [c.id, c]))
  const wanted = new Map(next.connectors.map((c) => [c.id, c]))
  const added: Array<Connector> = []
  const changed: Array<Connector> = []
  const removed: Array<Connector> = []
  const connectors: Array<Connector> = []
  for (const connector of next.connectors) {
    const before = running.get(connector.id)
    if (before !== undefined && connectorFingerprint(before) === connectorFingerprint(connector)) {
      // Unchanged: the running object stays, so everything holding it keeps holding the same one.
      connectors.push(before)
    } else if (isPerUser(before) || isPerUser(connector)) {
      needsRestart.push(`connectors.${connector.id}`)
      if (before !== undefined) connectors.push(before)
    } else {
      connectors.push(connector)
      ;(before === undefined ? added : changed).push(connector)
    }
  }
  for (const connector of previous.connectors) {
    if (wanted.has(connector.id)) continue
    if (isPerUser(connector)) {
      needsRestart.push(`connectors.${connector.id}`)
      connectors.push(connector)
    } else {
      removed.push(connector)
    }
  }

  const grantsChanged = settingsFingerprint(previous.grants) !== settingsFingerprint(next.grants)
  const identityChanged = settingsFingerprint(previous.identity) !== settingsFingerprint(next.identity)
  return {
    previous,
    next: {
      ...next,
      ...kept,
      connectors,
      grants: grantsChanged ? next.grants : previous.grants,
      identity: identityChanged ? next.identity : previous.identity
    } as ApertureConfig,
    connectors: { added, removed, changed },
    grantsChanged,
    identityChanged,
    needsRestart
  }
}

/** One line saying what a reload changed: `connectors added a; removed b; changed c; grants changed`. */
export const describeChange = (change: ConfigChange): string => {
  const parts: Array<string> = []
  const { added, changed, removed } = change.connectors
  if (added.length > 0) parts.push(`connectors added: ${added.map((c) => c.id).join(", ")}`)
  if (removed.length > 0) parts.push(`connectors removed: ${removed.map((c) => c.id).join(", ")}`)
  if (changed.length > 0) parts.push(`connectors changed: ${changed.map((c) => c.id).join(", ")}`)
  if (change.grantsChanged) parts.push("grants changed")
  if (change.identityChanged) parts.push("identity plugins changed")
  return parts.length === 0 ? "nothing to apply" : parts.join("; ")
}

/** A hash of a decoded config's settings, for configs that come from no file (an embedder's reload). */
export const settingsHash = (config: ApertureConfig): string =>
  createHash("sha256").update(settingsFingerprint({ ...config, source: undefined, warnings: undefined, describe: undefined })).digest("hex")
