// The shapes the services answer, as the console reads them. Names follow the server's
// (snake_case), so a reader can match a field here to the OpenAPI document at /<service>/docs.

/** Who an account is: the roles of the city's users.yaml. */
export type Role = 'operator' | 'dispatcher' | 'shift_lead' | 'department' | 'inspector' | 'hotline' | 'video'

/** POST /auth/token and /auth/refresh (OAuth2 password and refresh-token grants). */
export interface TokenAnswer {
  access_token: string
  token_type: 'bearer'
  expires_in: number
  refresh_token: string
  refresh_expires_in: number
  role: Role
  department_id: string | null
  inspector_id: string | null
}

/** GET /auth/me. */
export interface Me {
  username: string
  role: Role
  name: string
  department_id: string | null
  inspector_id: string | null
}

/** Every error answer of every service: `{code, message, details}`. */
export interface ErrorBody {
  code: string
  message: string
  details?: unknown
}

export type PeriodKind = 'day' | 'week' | 'month'

/** The period a person picked: a day, week or month holding `date` (the server's today when
 * absent), or a range of days. */
export type PeriodChoice = { kind: PeriodKind; date?: string } | { kind: 'range'; from: string; to: string }

/** A period as the server answered it (dates YYYY-MM-DD, both ends included). */
export interface PeriodAnswered {
  kind: PeriodKind | 'range'
  start: string
  end: string
}

/** The base counters and derived indicators of a scope, keyed by the names of
 * shared/city/indicators.py, in the order of that one list. */
export type Counters = Record<string, number>
export type Indicators = Record<string, number | null>

/** GET /assessment/indicators, and each event of GET /assessment/live. */
export interface IndicatorAnswer {
  scope: { kind: string; id: string; name: string }
  period: PeriodAnswered
  counters: Counters
  indicators: Indicators
}

/** The scope kinds a ranking compares (those the dashboard offers). */
export type RankedKind = 'department' | 'district' | 'street' | 'community' | 'inspector'

export interface RankingRow {
  rank: number | null
  scope_id: string
  name: string
  value: number | null
  counters: Counters
  indicators: Indicators
}

/** GET /assessment/rankings. */
export interface RankingAnswer {
  scope_kind: RankedKind
  indicator: string
  period: PeriodAnswered
  ranking: RankingRow[]
}

/** The levels of the city's grid, finest first. */
export type MapLevel = 'cell' | 'community' | 'street' | 'district'

/** GET /assessment/map: one indicator of every scope of a kind. */
export interface MapAnswer {
  scope_kind: MapLevel | 'department' | 'inspector'
  indicator: string
  period: PeriodAnswered
  values: Record<string, number | null>
}

/** GET /city/geometry/{level}: a GeoJSON FeatureCollection whose feature ids are scope ids. */
export interface ScopeFeature {
  type: 'Feature'
  id: string
  properties: { id: string; name: string; [key: string]: unknown }
  geometry: { type: 'Polygon' | 'MultiPolygon'; coordinates: unknown[] }
}

export interface ScopeFeatureCollection {
  type: 'FeatureCollection'
  features: ScopeFeature[]
}

// --- the case lifecycle ------------------------------------------------------------------------

/** Where a report came from. */
export type ReportSource = 'inspector' | 'hotline' | 'public' | 'video'

/** A report in intake: an operator decides `awaiting_review` (video), an inspector `verifying`. */
export type ReportStatus = 'awaiting_review' | 'verifying' | 'filed' | 'rejected' | 'merged'

/** Why a report is not filed (不予立案). */
export type RejectionReason = 'out_of_scope' | 'invalid' | 'not_confirmed'

/** GET /intake/reports, /intake/verifications, /intake/reports/{id}. */
export interface Report {
  id: string
  status: ReportStatus
  source: ReportSource
  category_code: string
  description: string
  lon: number
  lat: number
  cell_id: string
  street_id: string
  district_id: string
  photos: string[]
  received_at: string
  case_number: string | null
  verifier_id: string | null
  verification_due_at: string | null
  verification_due_provisional: boolean
  merged_into: string | null
  rejection_code: string | null
  rejection_reason: string | null
  decided_by: string | null
  decided_at: string | null
  self_handled: boolean
  external_ref: string | null
}

/** The case as the command center sees it (the case file's status). */
export type CaseStatus =
  | 'filed'
  | 'coordination'
  | 'dispatched'
  | 'accepted'
  | 'returned'
  | 'suspended'
  | 'handled'
  | 'checking'
  | 'rework'
  | 'closed'
  | 'cancelled'

/** GET /intake/cases/{id}, and each item of the case search. */
export interface CaseRecord {
  id: string
  case_number: string
  status: CaseStatus
  category_code: string
  source: ReportSource
  lon: number
  lat: number
  cell_id: string
  street_id: string
  district_id: string
  reported_at: string
  filed_at: string
  department_id: string | null
  handling_deadline: string | null
  handling_deadline_provisional: boolean
  closed_at: string | null
  on_time: boolean | null
}

/** GET /intake/cases: a page, newest filed first; `next` asks for the following one. */
export interface CasePage {
  items: CaseRecord[]
  next: string | null
}

/** One step of a case (GET /intake/cases/{id}/timeline): what, when, who and why; `details` is
 * the event's own payload. */
export interface TimelineEntry {
  at: string
  event_type: string
  service: string
  actor: string
  reason: string | null
  details: Record<string, unknown>
}

/** Where a case stands for dispatch. */
export type DispatchStatus = 'coordination' | 'dispatched' | 'returned' | 'suspended' | 'handled' | 'closed' | 'cancelled'

/** GET /dispatch/queue, /dispatch/extensions, /dispatch/cases/{id}, and each dispatch action. */
export interface DispatchCase {
  id: string
  case_number: string
  category_code: string
  street_id: string
  district_id: string
  status: DispatchStatus
  department_id: string | null
  attempt: number
  rule_id: string | null
  dispatched_at: string | null
  accepted: boolean
  handling_deadline: string | null
  handling_deadline_provisional: boolean
  deadline_missed_at: string | null
  suspended_at: string | null
  extension_deadline: string | null
  extension_reason: string | null
  extension_requested_by: string | null
  supervision_level: number
  dispatch_deadline: string | null
  dispatch_deadline_provisional: boolean
}

/** GET /dispatch/departments. */
export interface Department {
  id: string
  name: string
  kind: string
}

/** A case as its department sees it. */
export type TaskStatus =
  | 'reported'
  | 'assigned'
  | 'accepted'
  | 'handled'
  | 'rework'
  | 'returned'
  | 'suspended'
  | 'closed'
  | 'cancelled'

/** GET /handling/inbox, /handling/cases/{id}, and each department action. */
export interface Task {
  id: string
  case_number: string | null
  category_code: string
  description: string
  lon: number
  lat: number
  cell_id: string
  street_id: string
  district_id: string
  report_photos: string[]
  status: TaskStatus
  department_id: string | null
  dispatched_at: string | null
  handling_deadline: string | null
  handling_deadline_provisional: boolean
  extension_deadline: string | null
  accepted_by: string | null
  result: string | null
  result_photos: string[] | null
  handled_at: string | null
  rework_reason: string | null
}

export type ClosureStatus = 'open' | 'checking' | 'closed' | 'cancelled'

/** GET /closure/checks, /closure/cases/{id}, and the check and cancel actions. */
export interface ClosureCase {
  id: string
  case_number: string
  category_code: string
  cell_id: string
  inspector_id: string
  status: ClosureStatus
  department_id: string | null
  handling_deadline: string | null
  handling_deadline_provisional: boolean
  handled_at: string | null
  handling_result: string | null
  check_deadline: string | null
  check_deadline_provisional: boolean
  check_missed_at: string | null
  checks: number
  closed_at: string | null
  on_time: boolean | null
}

/** POST /<service>/photos: each photo as stored, named by its content hash. */
export interface StoredPhoto {
  digest: string
  media_type: string
  size: number
}

// --- the city's reference data -----------------------------------------------------------------

/** GET /city/scopes: districts → streets → communities. */
export interface ScopeTree {
  city: { name: string; name_en: string }
  districts: Array<{
    id: string
    name: string
    streets: Array<{ id: string; name: string; communities: Array<{ id: string; name: string }> }>
  }>
}

/** GET /city/categories: a category (CJ/T 214) and its time limits. */
export interface Category {
  code: string
  name: string
  name_en: string
  family: 'component' | 'event'
  major_code: string
  major_name: string
  major_name_en: string
  urgent: boolean
  time_basis: 'working' | 'calendar'
  limits_minutes: { filing: number; dispatch: number; handling: number; check: number }
}

// --- the monthly bulletin ----------------------------------------------------------------------

/** A row of a bulletin's breakdown (by source, by family): counters and rates side by side. */
export type BulletinRow = { id: string; name: string } & Record<string, number | string | null>

/** GET /assessment/bulletins/{YYYY-MM}. */
export interface Bulletin {
  city: string
  period: PeriodAnswered
  totals: Record<string, number | null>
  by_source: BulletinRow[]
  by_family: BulletinRow[]
  top_categories: Array<{ code: string; name: string; reports: number; filed: number }>
  department_ranking: RankingRow[]
  district_ranking: RankingRow[]
  overdue_backlog: Array<{ department_id: string; name: string; overdue_open: number }>
}
