/**
 * What `/v1/mcp` does with each method, independent of protocol era and session: lists come
 * from the catalog filtered by the caller's grants; calls, reads and gets are grant-checked,
 * renamed back to the upstream's name and forwarded to the owning upstream. A denied item
 * answers exactly as an unknown one.
 *
 * The per-request methods are plain functions returning promises: the MCP SDK calls them, and
 * a lookup plus one upstream request does not need a fiber of its own (running each call as an
 * Effect cost more CPU than the lookup and forwarding together: bench/README.md).
 * @module
 */
import type { McpSubscription } from "@modelcontextprotocol/client"
import {
  type ClientCapabilities,
  createRequestStateCodec,
  type LoggingLevel,
  ProtocolError,
  ProtocolErrorCode,
  ResourceNotFoundError,
  UriTemplate
} from "@modelcontextprotocol/server"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Runtime from "effect/Runtime"
import { UserAuth } from "../auth/UserAuth.js"
import { type AuditOutcome, AuditLog } from "../audit/AuditLog.js"
import { unservedEvent } from "../audit/unservedCall.js"
import { Catalog, type CatalogSnapshot } from "../catalog/Catalog.js"
import { decideEntry } from "../catalog/entryGrant.js"
import type { IndexEntry, UpstreamItem } from "../catalog/index.js"
import { splitPrefixedUri } from "../catalog/names.js"
import { GatewayConfig } from "../config/GatewayConfig.js"
import type { Category } from "../config/grantPattern.js"
import { GrantPolicy } from "../grants/GrantPolicy.js"
import type { Decision } from "../grants/policy.js"
import type { Identity } from "../plugin/IdentityPlugin.js"
import { Metrics } from "../metrics/Metrics.js"
import { logPasses, missingCapability } from "../upstream/callChannel.js"
import { passthrough } from "../upstream/passthrough.js"
import { type LiveUpstream, Upstreams } from "../upstream/Upstreams.js"
import { type CallContext, makeForwarder, type RoundState } from "../relay/forwardCall.js"
import { HeldCalls } from "../relay/heldCalls.js"
import { protocolFailure, type RelayOutcome, relayResult } from "../relay/outcome.js"
import { ResourceSubscriptions, type SessionSink } from "./resourceSubscriptions.js"
import { answered, relayOutcomeOf, tracedForward, tracedList, tracedListJson, tracedRequest } from "./tracedCalls.js"
import { Telemetry } from "../telemetry/Telemetry.js"
import { unlistedResource } from "../relay/resourceUris.js"
import { makeSystemTools } from "./systemTools.js"
import { liveConfigOrStatic } from "../config/LiveConfig.js"
import { makeUserConnections } from "./userConnections.js"

/** The gateway's own address, for links when `server.publicUrl` is not set. */
const listenOrigin = (host: string, port: number) =>
  `http://${host === "0.0.0.0" || host === "::" ? "localhost" : host.includes(":") ? `[${host}]` : host}:${port}`
import { callerView, encodedPage, pageResult } from "./views.js"

type Params = Record<string, unknown> | undefined

/** A caller's 2025-era session, as its own upstream sessions reach it outside a call. */
export interface CallerSessionHandle {
  readonly capabilities: () => ClientCapabilities | undefined
  readonly logLevel: () => LoggingLevel | undefined
  readonly request: (request: { method: string; params?: Record<string, unknown> }, signal: AbortSignal) => Promise<unknown>
  readonly log: (params: Record<string, unknown>) => Promise<void>
}

const invalidParams = (message: string) => new ProtocolError(ProtocolErrorCode.InvalidParams, message)

/** How long a caller has to come back with the answers of a round. */
const ROUND_STATE_TTL_SECONDS = 3600
/** How long an upstream call is held open for a 2026-era caller to answer its questions. */
const HELD_CALL_TTL_MS = 10 * 60_000

/** The params to send upstream: the caller's, with the upstream name and without the caller's progress token. */
const upstreamParams = (params: Params, replace: Record<string, unknown>) => {
  const { _meta, ...rest } = params ?? {}
  const meta = _meta as Record<string, unknown> | undefined
  let forwardedMeta: Record<string, unknown> | undefined
  if (meta !== undefined) {
    const { progressToken: _, ...others } = meta
    if (Object.keys(others).length > 0) forwardedMeta = others
  }
  return { ...rest, ...replace, ...(forwardedMeta !== undefined && { _meta: forwardedMeta }) }
}

type ListKey = "tools" | "prompts" | "resources" | "templates"

/** Each list's key in its result. */
const RESULT_KEYS: Record<ListKey, string> = { tools: "tools", prompts: "prompts", resources: "resources", templates: "resourceTemplates" }

export type ListMethod = "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list"

const legacyEncoding = new WeakMap<ReadonlyArray<UpstreamItem>, boolean>()

/** Whether a tools list holds an `outputSchema` whose root is not an object (the SDK's test, computed once per list). */
const needsLegacyEncoding = (tools: ReadonlyArray<UpstreamItem>): boolean => {
  let needs = legacyEncoding.get(tools)
  if (needs === undefined) {
    needs = tools.some((tool) => {
      const schema = tool["outputSchema"]
      return Predicate.isRecord(schema) && schema["type"] !== "object"
    })
    legacyEncoding.set(tools, needs)
  }
  return needs
}

/**
 * An outcome as the SDK handlers take an answer: the result, or the `ProtocolError` they send
 * as a JSON-RPC error; a cancelled request rethrows what aborted it (nobody is answered). The
 * 2025-era direct-call path reads the outcome itself (`sessionCalls.ts`), throwing nothing.
 */
export const answerOf = (outcome: RelayOutcome): Record<string, unknown> => {
  switch (outcome._tag) {
    case "Result":
      return outcome.value
    case "ProtocolFailure":
      throw new ProtocolError(outcome.code, outcome.message, outcome.data)
    case "Cancelled":
      throw outcome.reason
  }
}

/** How a forwarded call ended, for the audit log. */
const outcomeOf = (result: Record<string, unknown>): AuditOutcome =>
  result["isError"] === true ? "tool_error" : result["resultType"] === "input_required" ? "input_required" : "ok"

/** A request the caller could not be answered for, as the audit log writes it (what a thrown error wrote before). */
const failedAudit = (failure: unknown, aborted: boolean) => ({
  outcome: aborted ? "cancelled" as const : "error" as const,
  errorCode: failure instanceof ProtocolError ? failure.code : undefined
})

/**
 * A failed routing to the caller's own upstream session (it could not be opened) as an
 * outcome; anything but a protocol error is a defect and stays thrown.
 */
const routeFailure = (error: unknown): RelayOutcome => {
  if (error instanceof ProtocolError) return protocolFailure(error.code, error.message, error.data)
  throw error
}

export class McpRouter extends Effect.Service<McpRouter>()("aperture/McpRouter", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const catalog = yield* Catalog
    const upstreams = yield* Upstreams
    const audit = yield* AuditLog
    // One random key per gateway process: round states do not outlive it (callers start over).
    const roundStates = createRequestStateCodec<RoundState>({
      key: crypto.getRandomValues(new Uint8Array(32)),
      ttlSeconds: ROUND_STATE_TTL_SECONDS
    })
    const metrics = yield* Metrics
    // Present only with telemetry on: then requests and upstream exchanges are traced (tracedCalls.ts).
    const telemetry = Option.getOrUndefined(yield* Effect.serviceOption(Telemetry))
    // Rebuilt when a reload changes the connectors (`aperture_list_connectors` lists HTTP ones).
    let system = makeSystemTools(config.connectors)
    yield* (yield* liveConfigOrStatic).onChange("catalog", (change) =>
      Effect.sync(() => {
        system = makeSystemTools(change.next.connectors)
      }))

    // The grant policy's own cached lookup, taken once: asked on every list and call.
    const { policyOf: grantPolicyOf } = yield* GrantPolicy
    // Per-user OAuth connectors a user has not connected are hidden from their lists.
    const userConnections = makeUserConnections(
      yield* UserAuth,
      Runtime.runPromise(yield* Effect.runtime<never>()),
      config.server.publicUrl?.origin ?? listenOrigin(config.server.host, config.server.port)
    )
    /** What the caller may see and is allowed: their grants, less per-user connectors they have not connected. */
    const policyOf = (identity: Identity) => userConnections.viewPolicy(grantPolicyOf(identity), identity)

    const notConnected = (entry: IndexEntry) =>
      protocolFailure(ProtocolErrorCode.InternalError, `connector ${entry.connector.id} is not connected`)

    const live = (entry: IndexEntry): LiveUpstream => {
      const upstream = upstreams.get(entry.connector.id)
      if (upstream === undefined) {
        throw new ProtocolError(ProtocolErrorCode.InternalError, `connector ${entry.connector.id} is not connected`)
      }
      return upstream
    }

    /**
     * Sends `identity`'s request to the upstream its connector routes it to: the shared
     * connection, or the caller's own upstream session (`isolation: "caller"`, opened on first use).
     */
    const routedOutcome = (
      upstream: LiveUpstream,
      method: string,
      params: Record<string, unknown>,
      context: CallContext,
      identity: Identity
    ): Promise<RelayOutcome> => {
      const target = upstreams.route(upstream, identity)
      return target instanceof Promise
        ? target.then((own) => forwardOutcome(own, method, params, context, identity), routeFailure)
        : forwardOutcome(target, method, params, context, identity)
    }

    const forwardRouted = (
      upstream: LiveUpstream,
      method: string,
      params: Record<string, unknown>,
      context: CallContext,
      identity: Identity
    ): Promise<Record<string, unknown>> => routedOutcome(upstream, method, params, context, identity).then(answerOf)

    const heldCalls = new HeldCalls(HELD_CALL_TTL_MS)
    // Held upstream calls (and their timers) end with the router, not up to 10 minutes later.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => heldCalls.closeAll(new ProtocolError(ProtocolErrorCode.InternalError, "the gateway is shutting down")))
    )
    const forwardCall = makeForwarder(roundStates, heldCalls)
    /** Forwards one request, counted in /metrics by connector and method. */
    const countedForward = (
      upstream: LiveUpstream,
      method: string,
      params: Record<string, unknown>,
      context: CallContext,
      identity?: Identity
    ): Promise<RelayOutcome> => {
      const finish = metrics.startRequest(upstream.connector.id, method)
      return forwardCall(upstream, method, params, context, identity).then((outcome) => {
        finish(outcome._tag !== "Result")
        return outcome
      }, (error: unknown) => {
        finish(true)
        throw error
      })
    }

    const forwardOutcome = telemetry === undefined ? countedForward : tracedForward(telemetry, countedForward)

    /** What the caller may see of one list (the same array until the catalog or their grants change). */
    const visible = (key: ListKey, identity: Identity) => {
      const policy = policyOf(identity)
      const view = callerView(catalog.current(), policy)
      return key === "tools" ? system.withSystemTools(view.tools, policy) : view[key]
    }

    // `_traceparent`: taken by the traced list (telemetry on), unused here.
    const list = (key: ListKey) => (identity: Identity, params: Params, _traceparent?: string): Record<string, unknown> => {
      const cursor = params?.["cursor"]
      const result = pageResult(visible(key, identity), typeof cursor === "string" ? cursor : undefined, RESULT_KEYS[key])
      if (result === undefined) throw invalidParams("Invalid cursor")
      return result
    }

    /**
     * The same list page as UTF-8 JSON, encoded once per caller view and cursor. `undefined` for
     * an invalid cursor, and for a tools list the SDK would re-encode for a 2025-era caller
     * (SEP-2106 wraps an `outputSchema` whose root is not an object): those take the SDK path.
     */
    const listJson = (key: ListKey) => (identity: Identity, cursor: string | undefined, _traceparent?: string): Buffer | undefined => {
      const items = visible(key, identity)
      if (key === "tools" && needsLegacyEncoding(items)) return undefined
      return encodedPage(items, cursor, RESULT_KEYS[key])
    }
    const listJsonByMethod: Record<ListMethod, ReturnType<typeof listJson>> = {
      "tools/list": listJson("tools"),
      "prompts/list": listJson("prompts"),
      "resources/list": listJson("resources"),
      "resources/templates/list": listJson("templates")
    }
    /** A list with its span when telemetry is on; itself otherwise. */
    const tracedListOf = <A>(method: string, answer: (identity: Identity, params: Params) => A) =>
      telemetry === undefined ? answer : tracedList(telemetry, method, answer, (params: Params) => params?.["_meta"] === undefined ? undefined : params)

    /** The entry a caller names and the grant that allows it; no grant: denied (or unknown). */
    const lookup = (identity: Identity, byName: ReadonlyMap<string, IndexEntry>, name: unknown, policy = policyOf(identity)) => {
      const entry = typeof name === "string" ? byName.get(name) : undefined
      const grant = entry === undefined ? undefined : decideEntry(policy, entry)
      return { entry, grant }
    }

    const findAllowed = (identity: Identity, byName: ReadonlyMap<string, IndexEntry>, name: unknown): IndexEntry | undefined => {
      const found = lookup(identity, byName, name)
      return found.grant === undefined ? undefined : found.entry
    }

    /** A denied (or unknown) name: one audit line, then the caller's "not found". */
    const auditDenied = (identity: Identity, category: Category, name: unknown, entry: IndexEntry | undefined) => {
      if (!audit.enabled) return
      // Unknown because its connector is not serving, and the caller is allowed: say that instead.
      const unserved = entry === undefined
        ? unservedEvent(catalog.current(), policyOf(identity), identity, category, name, performance.now())
        : undefined
      audit.record(unserved ?? {
        identity,
        connector: entry?.connector.id,
        category,
        exposed: String(name),
        upstream: entry?.upstreamName,
        grant: undefined,
        startedAt: performance.now(),
        outcome: "denied"
      })
    }

    /** Forwards a granted call, read or get; with the audit log on, writes its line when it settles. */
    const decidedOutcome = (
      identity: Identity,
      entry: IndexEntry,
      grant: Decision,
      exposed: string,
      upstreamName: string,
      method: string,
      params: Record<string, unknown>,
      context: CallContext,
      args: unknown
    ): Promise<RelayOutcome> => {
      const upstream = upstreams.get(entry.connector.id)
      if (!audit.enabled) {
        return upstream === undefined ? Promise.resolve(notConnected(entry)) : routedOutcome(upstream, method, params, context, identity)
      }
      const startedAt = performance.now()
      const event = {
        identity,
        connector: entry.connector.id,
        // A read through a template is still a read.
        category: entry.category === "templates" ? "resources" as const : entry.category,
        exposed,
        upstream: upstreamName,
        grant,
        arguments: args,
        startedAt
      }
      let result: Promise<RelayOutcome>
      try {
        // Not connected: audited as an error too.
        result = upstream === undefined ? Promise.resolve(notConnected(entry)) : routedOutcome(upstream, method, params, context, identity)
      } catch (error) {
        result = Promise.reject(error)
      }
      return result.then(
        (outcome) => {
          switch (outcome._tag) {
            case "Result":
              audit.record({ ...event, outcome: outcomeOf(outcome.value) })
              break
            case "ProtocolFailure":
              audit.record({ ...event, outcome: context.signal.aborted ? "cancelled" : "error", errorCode: outcome.code })
              break
            case "Cancelled":
              audit.record({ ...event, ...failedAudit(outcome.reason, context.signal.aborted) })
          }
          return outcome
        },
        (error: unknown) => {
          audit.record({ ...event, ...failedAudit(error, context.signal.aborted) })
          throw error
        }
      )
    }

    const forwardDecided = (
      identity: Identity,
      entry: IndexEntry,
      grant: Decision,
      exposed: string,
      upstreamName: string,
      method: string,
      params: Record<string, unknown>,
      context: CallContext,
      args: unknown
    ): Promise<Record<string, unknown>> =>
      decidedOutcome(identity, entry, grant, exposed, upstreamName, method, params, context, args).then(answerOf)

    /**
     * A `tools/call`, answered as the relay's outcome: a denied or unknown tool and a connector
     * not connected are failures like the upstream's own, so the 2025 direct-call path throws
     * nothing (the SDK path turns the outcome into its answer with {@link answerOf}).
     */
    const callTool = (identity: Identity, params: Params, context: CallContext): Promise<RelayOutcome> => {
      const name = params?.["name"]
      // The grants, not the view: a per-user connector's tool granted but not connected is asked
      // to connect rather than told "not found" (system tools concern HTTP connectors only).
      const grants = grantPolicyOf(identity)
      const systemResult = system.call(name, grants)
      if (systemResult !== undefined) return Promise.resolve(relayResult(systemResult))
      const { entry, grant } = lookup(identity, catalog.current().index.toolsByName, name, grants)
      if (entry === undefined || grant === undefined) {
        auditDenied(identity, "tools", name, entry)
        return Promise.resolve(protocolFailure(ProtocolErrorCode.InvalidParams, `Tool ${String(name)} not found`))
      }
      const upstream = upstreamParams(params, { name: entry.upstreamName })
      const exposed = entry.exposed["name"] as string
      if (entry.connector.kind === "mcp" && entry.connector.userAuth !== undefined) {
        return userConnections.callTool(identity, entry, context, () =>
          decidedOutcome(identity, entry, grant, exposed, entry.upstreamName, "tools/call", upstream, context, params?.["arguments"]))
      }
      return decidedOutcome(identity, entry, grant, exposed, entry.upstreamName, "tools/call", upstream, context, params?.["arguments"])
    }

    const getPrompt = (identity: Identity, params: Params, context: CallContext) => {
      const name = params?.["name"]
      const { entry, grant } = lookup(identity, catalog.current().index.promptsByName, name)
      if (entry === undefined || grant === undefined) {
        auditDenied(identity, "prompts", name, entry)
        throw invalidParams(`Prompt ${String(name)} not found`)
      }
      const upstream = upstreamParams(params, { name: entry.upstreamName })
      return forwardDecided(identity, entry, grant, entry.exposed["name"] as string, entry.upstreamName, "prompts/get", upstream, context, params?.["arguments"])
    }

    /**
     * The connector and upstream URI for a resource URI: a listed resource, or one a listed
     * template produces (the template must be visible to the caller too), else any `<id>-<uri>`
     * the caller's grants cover as a resource (see {@link unlistedResource}).
     */
    const resolveResource = (snapshot: CatalogSnapshot, identity: Identity, uri: string) => {
      const listed = lookup(identity, snapshot.index.resourcesByUri, uri)
      if (listed.entry !== undefined && listed.grant !== undefined) {
        return { entry: listed.entry, upstreamUri: listed.entry.upstreamName, grant: listed.grant }
      }
      const policy = policyOf(identity)
      const prefixed = splitPrefixedUri(uri)
      for (const template of snapshot.index.templates) {
        const connector = template.connector
        const upstreamUri = connector.prefix ? (prefixed?.connectorId === connector.id ? prefixed.uri : undefined) : uri
        if (upstreamUri === undefined) continue
        let matches = false
        try {
          matches = new UriTemplate(template.upstreamName).match(upstreamUri) !== null
        } catch {
          matches = false
        }
        if (!matches) continue
        // The template's grant, or a grant for the very resource it produces.
        const grant = decideEntry(policy, template) ??
          policy.decide({ connectorId: connector.id, labels: connector.labels, category: "resources", name: upstreamUri })
        if (grant !== undefined) return { entry: template, upstreamUri, grant }
      }
      return unlistedResource(snapshot, policy, prefixed)
    }

    const readResource = (identity: Identity, params: Params, context: CallContext) => {
      const uri = params?.["uri"]
      if (typeof uri !== "string") throw invalidParams("uri is required")
      const snapshot = catalog.current()
      const resolved = resolveResource(snapshot, identity, uri)
      if (resolved === undefined) {
        if (audit.enabled) auditDenied(identity, "resources", uri, snapshot.index.resourcesByUri.get(uri))
        throw new ResourceNotFoundError(uri)
      }
      const upstream = upstreamParams(params, { uri: resolved.upstreamUri })
      return forwardDecided(identity, resolved.entry, resolved.grant, uri, resolved.upstreamUri, "resources/read", upstream, context, undefined)
    }

    const complete = async (identity: Identity, params: Params, context: CallContext) => {
      const index = catalog.current().index
      const ref = params?.["ref"] as { type?: unknown; name?: unknown; uri?: unknown } | undefined
      let entry: IndexEntry | undefined
      let upstreamRef: Record<string, unknown>
      if (ref?.type === "ref/prompt") {
        entry = findAllowed(identity, index.promptsByName, ref.name)
        if (entry === undefined) throw invalidParams(`Prompt ${String(ref.name)} not found`)
        upstreamRef = { ...ref, name: entry.upstreamName }
      } else if (ref?.type === "ref/resource") {
        entry = findAllowed(identity, index.templatesByUri, ref.uri) ?? findAllowed(identity, index.resourcesByUri, ref.uri)
        if (entry === undefined) throw invalidParams(`Resource template ${String(ref.uri)} not found`)
        upstreamRef = { ...ref, uri: entry.upstreamName }
      } else {
        throw invalidParams("ref must be a ref/prompt or ref/resource")
      }
      const upstream = live(entry)
      if (!upstream.client.getServerCapabilities()?.completions) return { completion: { values: [], hasMore: false } }
      return forwardRouted(upstream, "completion/complete", upstreamParams(params, { ref: upstreamRef }), context, identity)
    }

    const subscriptions = new ResourceSubscriptions()

    // 2026-era upstreams deliver resource updates on a subscriptions/listen stream per URI.
    const listens = new Map<string, Promise<McpSubscription>>()
    // The router closing forgets every subscriber and closes its upstream listen streams.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        subscriptions.clear()
        for (const opened of listens.values()) opened.then((subscription) => subscription.close()).catch(() => {})
        listens.clear()
      })
    )

    /** Opens or closes an upstream subscription. */
    const upstreamSubscription = async (
      connectorId: string,
      uri: string,
      method: "resources/subscribe" | "resources/unsubscribe"
    ): Promise<void> => {
      const upstream = upstreams.get(connectorId)
      if (upstream === undefined || !upstream.client.getServerCapabilities()?.resources?.subscribe) return
      if (upstream.era !== "modern") {
        await upstream.client.request({ method, params: { uri } }, passthrough)
        return
      }
      const key = `${connectorId}\u0000${uri}`
      if (method === "resources/subscribe") {
        const opening = upstream.client.listen({ resourceSubscriptions: [uri] })
        listens.set(key, opening)
        opening.catch(() => listens.delete(key))
        await opening
      } else {
        const opened = listens.get(key)
        listens.delete(key)
        await opened?.then((subscription) => subscription.close())
      }
    }

    const subscribe = async (identity: Identity, params: Params, sink: SessionSink, _context?: CallContext) => {
      const uri = params?.["uri"]
      if (typeof uri !== "string") throw invalidParams("uri is required")
      const resolved = resolveResource(catalog.current(), identity, uri)
      if (resolved === undefined) throw new ResourceNotFoundError(uri)
      const upstream = live(resolved.entry)
      // Shared upstream subscriptions would hear one user's resources for another.
      if (upstream.connector.kind === "mcp" && upstream.connector.userAuth !== undefined) {
        throw new ProtocolError(ProtocolErrorCode.MethodNotFound, `connector ${upstream.connector.id} uses per-user OAuth: resource subscriptions are not offered for it`)
      }
      if (!upstream.client.getServerCapabilities()?.resources?.subscribe) {
        throw new ProtocolError(ProtocolErrorCode.MethodNotFound, `connector ${upstream.connector.id} does not offer resource subscriptions`)
      }
      const connectorId = upstream.connector.id
      await subscriptions.subscribe(connectorId, resolved.upstreamUri, uri, sink, () =>
        upstreamSubscription(connectorId, resolved.upstreamUri, "resources/subscribe"))
      return {}
    }

    const unsubscribe = async (identity: Identity, params: Params, sink: SessionSink, _context?: CallContext) => {
      const uri = params?.["uri"]
      if (typeof uri !== "string") throw invalidParams("uri is required")
      const resolved = resolveResource(catalog.current(), identity, uri)
      if (resolved !== undefined && subscriptions.remove(resolved.entry.connector.id, resolved.upstreamUri, sink)) {
        await upstreamSubscription(resolved.entry.connector.id, resolved.upstreamUri, "resources/unsubscribe").catch(() => {})
      }
      return {}
    }

    /**
     * A 2026-era `subscriptions/listen` stream asking for resource updates: subscribes upstream
     * to the URIs the caller may read. Returns the release to run when the stream ends.
     */
    const subscribeListen = (identity: Identity, uris: ReadonlyArray<string>, sink: SessionSink): () => void => {
      const held: Array<{ readonly connectorId: string; readonly upstreamUri: string }> = []
      for (const uri of uris) {
        const resolved = resolveResource(catalog.current(), identity, uri)
        if (resolved === undefined) continue
        const connectorId = resolved.entry.connector.id
        held.push({ connectorId, upstreamUri: resolved.upstreamUri })
        subscriptions.subscribe(connectorId, resolved.upstreamUri, uri, sink, () =>
          upstreamSubscription(connectorId, resolved.upstreamUri, "resources/subscribe")).catch(() => {})
      }
      return () => {
        for (const { connectorId, upstreamUri } of held) {
          if (subscriptions.remove(connectorId, upstreamUri, sink)) {
            upstreamSubscription(connectorId, upstreamUri, "resources/unsubscribe").catch(() => {})
          }
        }
      }
    }

    const dropSubscriptions = (sink: SessionSink) => {
      for (const { connectorId, upstreamUri } of subscriptions.drop(sink)) {
        upstreamSubscription(connectorId, upstreamUri, "resources/unsubscribe").catch(() => {})
      }
    }

    yield* upstreams.onResourceUpdated((connectorId, uri) => {
      const subscribed = subscriptions.subscribersOf(connectorId, uri)
      if (subscribed === undefined) return
      for (const sink of subscribed.sinks) sink.sendResourceUpdated(subscribed.exposedUri).catch(() => {})
    })
    // A reconnected upstream has forgotten our subscriptions: renew them.
    yield* upstreams.onConnected((connectorId) => {
      for (const uri of subscriptions.urisOf(connectorId)) {
        upstreamSubscription(connectorId, uri, "resources/subscribe").catch(() => {})
      }
    })

    /** `logging/setLevel` goes to every connected upstream the caller can reach that supports logging. */
    const setLogLevel = async (identity: Identity, params: Params, context: CallContext) => {
      const policy = policyOf(identity)
      // 2026-era upstreams take the level per request instead (see forwardCall.ts).
      const targets = upstreams.all().filter((u) =>
        u.era !== "modern" && u.client.getServerCapabilities()?.logging !== undefined &&
        policy.touches(u.connector.id, u.connector.labels)
      )
      // With `isolation: "caller"` the level is set on the caller's own session (opened for it).
      // A shared session is left at the upstream's default: one caller's level would change
      // what every other caller gets; each caller's own level filters what reaches it.
      await Promise.all(targets.map(async (u) => {
        const target = await upstreams.route(u, identity)
        if (target !== u) await forwardOutcome(target, "logging/setLevel", upstreamParams(params, {}), context)
      }).map((p) => p.catch(() => {})))
      return {}
    }

    /** Each caller's open 2025-era sessions, newest last (see {@link attachCaller}). */
    const callerSessions = new Map<string, Array<CallerSessionHandle>>()
    yield* Effect.addFinalizer(() => Effect.sync(() => callerSessions.clear()))

    /**
     * Registers a caller's 2025-era session: its own upstream sessions reach it through the
     * newest one that can take the request (roots asked outside a call, say). Returns the detach.
     */
    const attachCaller = (identity: Identity, handle: CallerSessionHandle): () => void => {
      const handles = callerSessions.get(identity.login) ?? []
      handles.push(handle)
      callerSessions.set(identity.login, handles)
      return () => {
        const remaining = (callerSessions.get(identity.login) ?? []).filter((h) => h !== handle)
        if (remaining.length === 0) callerSessions.delete(identity.login)
        else callerSessions.set(identity.login, remaining)
      }
    }

    upstreams.setCallerChannels((identity) => ({
      ask: async (method, params, signal) => {
        const handles = callerSessions.get(identity.login) ?? []
        let missing: string | undefined
        for (let i = handles.length - 1; i >= 0; i--) {
          missing = missingCapability(handles[i]!.capabilities(), method, params)
          if (missing === undefined) return handles[i]!.request({ method, ...(params !== undefined && { params }) }, signal)
        }
        throw missing === undefined
          ? new ProtocolError(ProtocolErrorCode.InternalError, `Aperture has no open 2025-era session of this caller to send ${method} to`)
          : new ProtocolError(ProtocolErrorCode.MethodNotFound, `The calling client does not support ${missing}`)
      },
      log: (params) => {
        for (const handle of callerSessions.get(identity.login) ?? []) {
          if (logPasses(params["level"], handle.logLevel())) handle.log(params).catch(() => {})
        }
      }
    }))

    /** A caller's roots changed: its own upstream sessions are told, and ask it again. */
    const rootsChanged = (identity: Identity) => {
      for (const own of upstreams.sessionsOf(identity.login)) {
        own.client.notification({ method: "notifications/roots/list_changed" }).catch(() => {})
      }
    }

    return {
      listTools: tracedListOf("tools/list", list("tools")),
      listPrompts: tracedListOf("prompts/list", list("prompts")),
      listResources: tracedListOf("resources/list", list("resources")),
      listResourceTemplates: tracedListOf("resources/templates/list", list("templates")),
      /** Each list method's result as UTF-8 JSON (see {@link encodedPage}), for answers that skip the SDK. */
      listJson: telemetry === undefined ? listJsonByMethod : tracedListJson(telemetry, listJsonByMethod),
      callTool: telemetry === undefined ? callTool : tracedRequest(telemetry, "tools/call", callTool, relayOutcomeOf),
      getPrompt: telemetry === undefined ? getPrompt : tracedRequest(telemetry, "prompts/get", getPrompt, answered),
      readResource: telemetry === undefined ? readResource : tracedRequest(telemetry, "resources/read", readResource, answered),
      complete: telemetry === undefined ? complete : tracedRequest(telemetry, "completion/complete", complete, answered),
      setLogLevel: telemetry === undefined ? setLogLevel : tracedRequest(telemetry, "logging/setLevel", setLogLevel, answered),
      rootsChanged,
      attachCaller,
      subscribe,
      unsubscribe,
      subscribeListen,
      dropSubscriptions,
      /** Resources with subscribers (for tests: none outlives the router). */
      subscriptionCount: () => subscriptions.size,
      policyOf,
      /** Verifies a caller's echoed `requestState` (pass as the downstream server's `requestState.verify`). */
      verifyRoundState: roundStates.verify
    } as const
  })
}) {}
