// Who sees what in the console. The server decides what each role may read and do; this only
// chooses the pages worth showing each role (a page it could not use would answer 403s).

import type { RouteLocationRaw } from 'vue-router'

import type { Role } from './api/types'
import { user } from './session'

/** The command center: they read every scope's figures (assessment's READERS, narrowed). */
export const COMMAND_CENTER: readonly Role[] = ['operator', 'dispatcher', 'shift_lead']

/** The people who use the console; the hotline and video accounts are systems, on the API. */
export const CONSOLE_ROLES: readonly Role[] = [...COMMAND_CENTER, 'department', 'inspector']

export const isConsoleRole = (role: Role): boolean => CONSOLE_ROLES.includes(role)

/** The route (by name) each role lands on after logging in. */
export const HOME: Readonly<Record<Role, string>> = {
  shift_lead: 'dashboard',
  operator: 'workbench-operator',
  dispatcher: 'workbench-dispatcher',
  department: 'workbench-department',
  inspector: 'workbench-inspector',
  hotline: 'login',
  video: 'login',
}

/** Where the logged-in user goes when they asked for nothing, or for a page not theirs. */
export function homeOf(): RouteLocationRaw {
  const role = user.value?.role
  return { name: role && isConsoleRole(role) ? HOME[role] : 'login' }
}
