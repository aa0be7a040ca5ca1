/**
 * Knowing when a streamed response is over: the SDK answers with SSE bodies that outlive the
 * handler call, and sessions and draining need to count them.
 * @module
 */

/** Returns the response with a body that calls `onDone` once, when it ends, fails or is cancelled. */
export const onBodyDone = (response: Response, onDone: () => void): Response => {
  if (response.body === null) {
    onDone()
    return response
  }
  let pending = true
  const done = () => {
    if (pending) {
      pending = false
      onDone()
    }
  }
  const reader = response.body.getReader()
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await reader.read()
        if (chunk.done) {
          done()
          controller.close()
        } else controller.enqueue(chunk.value)
      } catch (error) {
        done()
        controller.error(error)
      }
    },
    cancel(reason) {
      done()
      return reader.cancel(reason)
    }
  })
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
}

export const isEventStream = (response: Response) =>
  response.headers.get("content-type")?.includes("text/event-stream") === true
