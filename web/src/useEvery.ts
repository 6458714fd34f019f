// Work lists follow the city without a click: asked again every so often while the page is in
// view (a hidden tab asks nothing), and at once when it comes back into view.

import { onBeforeUnmount, onMounted } from 'vue'

export function useEvery(ms: number, run: () => void): void {
  let timer: ReturnType<typeof setInterval> | undefined
  const visible = (): boolean => document.visibilityState === 'visible'
  const onVisibility = (): void => {
    if (visible()) run()
  }
  onMounted(() => {
    timer = setInterval(() => visible() && run(), ms)
    document.addEventListener('visibilitychange', onVisibility)
  })
  onBeforeUnmount(() => {
    clearInterval(timer)
    document.removeEventListener('visibilitychange', onVisibility)
  })
}
