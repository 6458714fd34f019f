// Logging in (OAuth2 password grant), the refresh-token grant, log-out and who-am-I:
// services/runtime/accounts.py.

import { getJson, request } from './http'
import type { Me, TokenAnswer } from './types'

export const logIn = (username: string, password: string): Promise<TokenAnswer> =>
  request<TokenAnswer>('POST', '/auth/token', { form: { username, password }, auth: false })

/** Each refresh token is good once: the answer carries the next one. */
export const refresh = (refreshToken: string): Promise<TokenAnswer> =>
  request<TokenAnswer>('POST', '/auth/refresh', {
    form: { grant_type: 'refresh_token', refresh_token: refreshToken },
    auth: false,
  })

export const logOut = (refreshToken: string): Promise<void> =>
  request<void>('POST', '/auth/logout', { form: { refresh_token: refreshToken }, auth: false })

export const me = (): Promise<Me> => getJson<Me>('/auth/me')
