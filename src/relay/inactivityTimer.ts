/**
 * The per-call timeout: it fires when the upstream has shown no sign of life (no answer, no
 * progress) for `ms`, restarts on progress, and stops while the call waits on its caller
 * (an elicitation may take a human minutes).
 * @module
 */
export interface InactivityTimer {
  readonly reset: () => void
  readonly pause: () => void
  readonly resume: () => void
  readonly stop: () => void
}

export const inactivityTimer = (ms: number, onExpiry: () => void): InactivityTimer => {
  let timer: NodeJS.Timeout | undefined
  let paused = 0
  let stopped = false
  const arm = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = stopped || paused > 0 ? undefined : setTimeout(onExpiry, ms)
  }
  arm()
  return {
    reset: arm,
    pause: () => {
      paused++
      arm()
    },
    resume: () => {
      paused = Math.max(0, paused - 1)
      arm()
    },
    stop: () => {
      stopped = true
      arm()
    }
  }
}
