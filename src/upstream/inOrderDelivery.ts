/**
 * Messages from an upstream handled in the order it sent them.
 *
 * The SDK client (`Protocol`) runs a notification's handler a microtask after its transport
 * delivers it (`_onnotification` dispatches through `Promise.resolve().then`), but settles a
 * response at once (`_onresponse`), dropping the request's progress handler as it does. When a
 * transport delivers several messages in one go — the stdio transport reads every message of a
 * chunk in one loop — a call's last progress notification and its result arrive together, the
 * result is handled first, and the progress reaches a handler that is gone: the caller lost it
 * (test/stdioProgress.test.ts shows it with server-everything's long-running operation).
 *
 * Delaying each response by one microtask puts it behind the handlers of the notifications
 * delivered before it (microtasks run in order), and keeps responses in order among
 * themselves. Done at the transport boundary, after connect, so the SDK is used as it is.
 * @module
 */
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client"

const isResponse = (message: JSONRPCMessage) => "id" in message && !("method" in message)

/** Wraps the SDK client's handler on `transport` (set by `connect`): responses are handled after earlier notifications. */
export const handleInOrder = (transport: Transport): void => {
  const handle = transport.onmessage
  if (handle === undefined) return
  transport.onmessage = (message, extra) => {
    if (isResponse(message)) queueMicrotask(() => handle(message, extra))
    else handle(message, extra)
  }
}
