// A view's data from the API: loaded, reloaded on demand (a refresh, after an action), the later
// answer always winning, and the failure kept for an ErrorNotice.

import { onBeforeUnmount, ref, shallowRef, type Ref, type ShallowRef } from 'vue'

import { isAbort, latestOnly } from './pacing'

export interface Loaded<T> {
  data: ShallowRef<T>
  error: Ref<unknown>
  loading: Ref<boolean>
  reload: () => Promise<void>
}

export function useLoad<T, I = T>(load: (signal: AbortSignal) => Promise<T>, initial: I): Loaded<T | I> {
  const data = shallowRef<T | I>(initial)
  const error = ref<unknown>(null)
  const loading = ref(false)
  const requests = latestOnly()
  async function reload(): Promise<void> {
    const signal = requests.next()
    loading.value = true
    try {
      const answer = await load(signal)
      if (signal.aborted) return
      data.value = answer
      error.value = null
    } catch (failure) {
      if (!isAbort(failure)) error.value = failure
    } finally {
      if (!signal.aborted) loading.value = false
    }
  }
  onBeforeUnmount(requests.cancel)
  return { data, error, loading, reload }
}

/** One action at a time (a button's click): busy while it runs, what it did or why it failed. */
export function useAction() {
  const busy = ref(false)
  const error = ref<unknown>(null)
  const notice = ref<string | null>(null)
  async function run<T>(action: () => Promise<T>, said: (answer: T) => string): Promise<T | undefined> {
    busy.value = true
    error.value = null
    notice.value = null
    try {
      const answer = await action()
      notice.value = said(answer)
      return answer
    } catch (failure) {
      error.value = failure
      return undefined
    } finally {
      busy.value = false
    }
  }
  function clear(): void {
    error.value = null
    notice.value = null
  }
  return { busy, error, notice, run, clear }
}
