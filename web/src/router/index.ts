// History-mode routing (the runtime answers index.html for any page path), and the guard that
// sends a visitor to log in and each role to the pages it may use.

import { createRouter, createWebHistory } from 'vue-router'

import { homeOf, isConsoleRole } from '@/roles'
import { awaitingServer, onSessionConfirmed, onSessionEnded, restore, user } from '@/session'

import { routes } from './routes'

export const router = createRouter({ history: createWebHistory('/'), routes })

router.beforeEach(async (to) => {
  await restore()
  const me = user.value
  // A session kept while the server is away: the page waits for it (App says why), not the log-in.
  if (!me && awaitingServer.value !== null) return true
  if (to.name === 'login') return me && isConsoleRole(me.role) ? homeOf() : true
  if (!me) return { name: 'login', query: { redirect: to.fullPath } }
  const roles = to.meta.roles
  if (roles && !roles.includes(me.role)) return homeOf()
  return true
})

onSessionEnded(() => {
  const here = router.currentRoute.value
  void router.replace({ name: 'login', query: { redirect: here.fullPath, ended: '1' } })
})

// The guard again, now that it knows who is there: the log-in page sends them home, a page their
// role may not use sends them to theirs.
onSessionConfirmed(() => {
  const here = router.currentRoute.value
  return router.replace({ path: here.path, query: here.query, hash: here.hash, force: true })
})

export { routes }
