// The HTTP API client shared by every page: JSON in and out, the bearer token of this tab's
// session, errors in the API's `{"error": {"code", "message"}}` shape turned into ApiError,
// and a 401 on any authenticated call sending the user back to the login view.

import { getToken, expireSession } from './auth.js';

const BASE = '/api/v1';

/** A failed call: HTTP status (0 when the server was not reached), code and message. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    /** Seconds from a `Retry-After` header, when there was one. */
    this.retryAfter = retryAfter;
  }
}

/**
 * Calls `path` (relative to /api/v1, e.g. `/vehicles/states`).
 * Options: `method` (GET), `body` (sent as JSON), `query` (object; null/undefined values are
 * left out), `headers` (extra request headers), `auth` (true: send the token, and treat 401 as
 * an ended session), `signal`.
 * Resolves to the parsed JSON (or null for an empty body); rejects with ApiError.
 */
export async function api(path, { method = 'GET', body, query, headers: extra, auth = true, signal } = {}) {
  let url = BASE + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v != null && v !== '') params.set(k, String(v));
    const qs = params.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  const headers = { Accept: 'application/json', ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) {
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
  }

  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', e?.message || 'network error');
  }

  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;

  const err = data?.error ?? {};
  const retry = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
  const error = new ApiError(res.status, err.code ?? `http_${res.status}`, err.message ?? res.statusText,
    Number.isFinite(retry) ? retry : null);
  if (res.status === 401 && auth) expireSession();
  throw error;
}

/** Like api(), but a 404 (a route or object that does not exist yet) resolves to `fallback`. */
export async function apiOr404(path, fallback, options) {
  try {
    return await api(path, options);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return fallback;
    throw e;
  }
}

/** The live feed's WebSocket URL on this host, with the token and extra query parameters. */
export function liveUrl(params = {}) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const qs = new URLSearchParams({ token: getToken() ?? '' });
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') qs.set(k, String(v));
  return `${proto}//${location.host}${BASE}/live?${qs}`;
}
