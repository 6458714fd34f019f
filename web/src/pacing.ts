/** `run` at most once per `ms`: the first call at once, the calls inside the window folded into
 * one at its end. `cancel()` drops a pending one. */
export function throttle(run: () => void, ms: number): { (): void; cancel(): void } {
  let last = -Infinity
  let timer: ReturnType<typeof setTimeout> | undefined
  const call = (): void => {
    const wait = last + ms - performance.now()
    if (wait <= 0) {
      last = performance.now()
      run()
    } else if (timer === undefined) {
      timer = setTimeout(() => {
        timer = undefined
        last = performance.now()
        run()
      }, wait)
    }
  }
  call.cancel = (): void => {
    clearTimeout(timer)
    timer = undefined
  }
  return call
}

/** `jobs` run with at most `limit` in flight; results in the jobs' order. */
export async function inParallel<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results = new Array<T>(jobs.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const index = next++
      results[index] = await jobs[index]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker))
  return results
}

/** Each `next()` aborts the request the previous one started: a panel asked twice in quick
 * succession (a new period, then a live refresh) shows the later answer, never the slower one. */
export function latestOnly(): { next(): AbortSignal; cancel(): void } {
  let controller: AbortController | undefined
  return {
    next() {
      controller?.abort()
      controller = new AbortController()
      return controller.signal
    },
    cancel() {
      controller?.abort()
    },
  }
}

export const isAbort = (error: unknown): boolean => error instanceof DOMException && error.name === 'AbortError'
