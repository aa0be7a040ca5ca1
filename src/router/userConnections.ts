/**
 * Per-user OAuth connectors as the router sees them (`auth/UserAuth.ts` keeps the tokens): a
 * user who has not connected one does not see its tools, prompts or resources (deny until
 * authorized, as the upstream itself would), and a call of one of its tools is answered with the
 * way to connect it: a URL elicitation (2025-11-25 `elicitation/create`, mode `url`) when the
 * client declared it — and once the user has connected in the browser, the call goes on — else a
 * tool error holding the link.
 * @module
 */
import { randomUUID } from "node:crypto"
import { getSupportedElicitationModes } from "@modelcontextprotocol/client"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { UserAuthService } from "../auth/UserAuth.js"
import type { IndexEntry } from "../catalog/index.js"
import type { CallerPolicy } from "../grants/policy.js"
import type { Identity } from "../plugin/IdentityPlugin.js"
import type { CallContext } from "../relay/forwardCall.js"
import { type RelayOutcome, relayResult } from "../relay/outcome.js"

/** How long a call waits for its user to finish connecting in the browser after accepting the elicitation. */
const CONNECT_WAIT = Duration.minutes(5)

export interface UserConnections {
  /** `base` without the per-user connectors `identity` has not connected (the same policy when none). */
  readonly viewPolicy: (base: CallerPolicy, identity: Identity) => CallerPolicy
  /**
   * A granted call of a per-user connector's tool: `proceed` when the user is connected, else
   * the way to connect (and `proceed` once connected, if the client could show the link).
   */
  readonly callTool: (identity: Identity, entry: IndexEntry, context: CallContext, proceed: () => Promise<RelayOutcome>) => Promise<RelayOutcome>
}

export const makeUserConnections = (
  userAuth: UserAuthService,
  runPromise: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>,
  /** The origin of links to the gateway when no request says it (`server.publicUrl`, or the listen address). */
  origin: string
): UserConnections => {
  const hiding = new Map<string, CallerPolicy>()

  const viewPolicy = (base: CallerPolicy, identity: Identity): CallerPolicy => {
    if (userAuth.connectors.size === 0) return base
    const missing = userAuth.notConnected(identity.login)
    if (missing.length === 0) return base
    // Callers with the same grants and the same connectors missing share a policy (and views).
    const key = `${base.key}\u0000-${missing.join(",")}`
    let policy = hiding.get(key)
    if (policy === undefined) {
      policy = {
        key,
        decide: (target) => (missing.includes(target.connectorId) ? undefined : base.decide(target)),
        touches: base.touches
      }
      hiding.set(key, policy)
    }
    return policy
  }

  const notConnectedAnswer = (connectorId: string, login: string, detail: string) =>
    relayResult({
      content: [{ type: "text", text: `Connector ${connectorId} is not connected for ${login}. ${detail}` }],
      isError: true
    })

  /**
   * Until `login` has connected `connectorId` (or the wait ends): whether they did. Asks the store
   * every second: the callback may land on another replica, which this one would not hear of.
   */
  const connectedWithin = (login: string, connectorId: string, signal: AbortSignal) =>
    userAuth.isConnected(login, connectorId).pipe(
      // Asked again every second while not connected; ends once connected.
      Effect.repeat(Schedule.spaced(Duration.seconds(1)).pipe(Schedule.whileInput((yes: boolean) => !yes))),
      Effect.timeoutTo({ duration: CONNECT_WAIT, onSuccess: () => true, onTimeout: () => false }),
      (effect) => Effect.raceFirst(effect, Effect.async<boolean>((resume) => {
        const stop = () => resume(Effect.succeed(false))
        if (signal.aborted) stop()
        else signal.addEventListener("abort", stop, { once: true })
        return Effect.sync(() => signal.removeEventListener("abort", stop))
      }))
    )

  const callTool: UserConnections["callTool"] = async (identity, entry, context, proceed) => {
    const connectorId = entry.connector.id
    const connected = () => !userAuth.notConnected(identity.login).includes(connectorId)
    if (!userAuth.connectors.has(connectorId)) return proceed()
    // This replica may not have heard of a connection made on another one.
    if (connected() || await runPromise(userAuth.isConnected(identity.login, connectorId))) {
      const outcome = await proceed()
      // The call that found the user's tokens refused (expired) is answered as the next one would be.
      return outcome._tag === "Result" || connected() ? outcome : askToConnect(identity, connectorId, context, proceed)
    }
    return askToConnect(identity, connectorId, context, proceed)
  }

  /** The way to connect, as an elicitation the call waits on (then `proceed`), or a tool error with the link. */
  const askToConnect = async (
    identity: Identity,
    connectorId: string,
    context: CallContext,
    proceed: () => Promise<RelayOutcome>
  ): Promise<RelayOutcome> => {
    const started = await runPromise(Effect.either(userAuth.connect(identity.login, connectorId, origin)))
    if (started._tag === "Left") return notConnectedAnswer(connectorId, identity.login, started.left.message)
    const url = started.right.authUrl
    const elicit = context.request !== undefined && getSupportedElicitationModes(context.capabilities?.elicitation).supportsUrlMode
    if (elicit) {
      try {
        const answer = await context.request!({
          method: "elicitation/create",
          params: {
            mode: "url",
            elicitationId: randomUUID(),
            url,
            message: `Connect ${connectorId} to use its tools: sign in at the provider and allow access.`
          }
        }, context.signal) as { action?: unknown } | undefined
        if (answer?.action === "accept" && await runPromise(connectedWithin(identity.login, connectorId, context.signal))) {
          return proceed()
        }
      } catch {
        // The client could not show it: the link goes in the answer instead.
      }
    }
    return notConnectedAnswer(connectorId, identity.login, `Open this link to connect it (valid for 15 minutes), then call again: ${url}`)
  }

  return { viewPolicy, callTool }
}
