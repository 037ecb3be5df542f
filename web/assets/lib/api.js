// The HTTP API client shared by every page: JSON in and out, the bearer token of this tab's
// session, errors in the API's `{"error": {"code", "message"}}` shape turned into ApiError,
// and a 401 on any authenticated call ending the session (the page shell then shows the login
// view). Also signing in and out, which are API calls on top of the session store.

import { beginSession, endSession, expireSession, getToken } from './session.js';

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

function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Sends a request to `url` (an absolute path on this server). Options: `method` (GET), `body`
 * (a string or null), `headers`, `auth` (true: send the token, and treat 401 as an ended
 * session), `signal`. Resolves to the Response when it is 2xx; rejects with ApiError.
 */
export async function apiFetch(url, { method = 'GET', body, headers: extra, auth = true, signal } = {}) {
  const headers = { ...extra };
  if (auth) {
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
  }
  let res;
  try {
    res = await fetch(url, { method, headers, body, signal, credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', e?.message || 'network error');
  }
  if (res.ok) return res;
  const err = parseJson(await res.text().catch(() => ''))?.error ?? {};
  const retry = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
  const error = new ApiError(res.status, err.code ?? `http_${res.status}`, err.message ?? res.statusText,
    Number.isFinite(retry) ? retry : null);
  if (res.status === 401 && auth) expireSession();
  throw error;
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
  const res = await apiFetch(url, {
    method, headers, auth, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return parseJson(await res.text());
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

/**
 * Asks the server whether the token still holds: a 401 ends the session (through api()); any
 * other failure (offline, server restarting) changes nothing.
 */
export async function checkSession() {
  try {
    await api('/me');
  } catch {
    /* see above */
  }
}

/** Signs in; resolves to the user. Rejects with ApiError (401 wrong password, 429 throttled). */
export async function login(username, password) {
  const session = await api('/auth/login', { method: 'POST', body: { username, password }, auth: false });
  beginSession(session);
  return session.user;
}

/** Revokes the token on the server (best effort) and forgets it here. */
export function logout() {
  const token = getToken();
  if (token) {
    // Failure changes nothing for the user: the token is forgotten here either way.
    fetch(`${BASE}/auth/logout`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
  endSession();
}

/** The live feed's WebSocket URL on this host, with the token and extra query parameters. */
export function liveUrl(params = {}) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const qs = new URLSearchParams({ token: getToken() ?? '' });
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') qs.set(k, String(v));
  return `${proto}//${location.host}${BASE}/live?${qs}`;
}
