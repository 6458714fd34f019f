// Every page of the console, one line each: path, name, the view (loaded when first visited),
// who may open it and, when it belongs in the top bar, its label's message key.
//
// To add a view: put the .vue file under views/workbench/ or views/cases/ and add (or change)
// one `page(...)` line below. A role's landing page is in roles.ts (HOME).

import type { RouteRecordRaw, RouteRecordSingleView } from 'vue-router'

import type { Role } from '@/api/types'
import { COMMAND_CENTER, CONSOLE_ROLES } from '@/roles'
import LoginView from '@/views/LoginView.vue'

type View = RouteRecordSingleView['component']

declare module 'vue-router' {
  interface RouteMeta {
    /** Who may open the page; absent on the log-in page, the one page open to all. */
    roles?: readonly Role[]
    /** The message key of its link in the top bar; absent when it has no link there. */
    nav?: string
  }
}

function page(path: string, name: string, view: View, roles: readonly Role[], nav?: string): RouteRecordRaw {
  return { path, name, component: view, meta: { roles, nav } }
}

export const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: LoginView },
  page('/dashboard', 'dashboard', () => import('@/views/DashboardView.vue'), COMMAND_CENTER, 'nav.dashboard'),

  // Workbenches (工作台), one per role: views/workbench/.
  page('/workbench/operator', 'workbench-operator', () => import('@/views/workbench/OperatorWorkbench.vue'), ['operator'], 'nav.workbench'),
  page('/workbench/dispatcher', 'workbench-dispatcher', () => import('@/views/workbench/DispatcherWorkbench.vue'), ['dispatcher'], 'nav.workbench'),
  page('/workbench/shift-lead', 'workbench-shift-lead', () => import('@/views/workbench/ShiftLeadWorkbench.vue'), ['shift_lead'], 'nav.workbench'),
  page('/workbench/department', 'workbench-department', () => import('@/views/workbench/DepartmentWorkbench.vue'), ['department'], 'nav.workbench'),
  page('/workbench/inspector', 'workbench-inspector', () => import('@/views/workbench/InspectorWorkbench.vue'), ['inspector'], 'nav.workbench'),

  // Cases (案卷): the search and the case file, for every role (the server answers each the
  // cases it may see), and the monthly bulletin for the command center: views/cases/.
  page('/cases', 'cases', () => import('@/views/cases/CaseSearchView.vue'), CONSOLE_ROLES, 'nav.cases'),
  // A case's id is a UUID: anything else is no case, and never a path for the API calls.
  page('/cases/:id([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})', 'case-file', () => import('@/views/cases/CaseFileView.vue'), CONSOLE_ROLES),
  page('/bulletin', 'bulletin', () => import('@/views/cases/BulletinView.vue'), COMMAND_CENTER, 'nav.bulletin'),

  // The log-in page sends whoever is logged in on to their role's home.
  { path: '/', name: 'home', redirect: { name: 'login' } },
  page('/:unknown(.*)*', 'not-found', () => import('@/views/NotFoundView.vue'), CONSOLE_ROLES),
]
