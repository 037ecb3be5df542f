// This tab's session: the bearer token and the signed-in user live in sessionStorage, so each
// tab signs in on its own and closing the tab forgets it. Listeners hear when a session starts
// or ends. No imports: every other shared module builds on this one.

const TOKEN_KEY = 'fleet.token';
const USER_KEY = 'fleet.user';
const EXPIRES_KEY = 'fleet.expires_at';

const listeners = new Set();

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

/** This tab's bearer token, or null when signed out. */
export function getToken() {
  return storage()?.getItem(TOKEN_KEY) ?? null;
}

/** The signed-in user `{id, username, role, unit_id, driver_id}`, or null. */
export function getUser() {
  const raw = storage()?.getItem(USER_KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

function clear() {
  const s = storage();
  if (!s) return;
  s.removeItem(TOKEN_KEY);
  s.removeItem(USER_KEY);
  s.removeItem(EXPIRES_KEY);
}

function emit(event) {
  for (const fn of listeners) fn(event);
}

/** Calls `fn({signedIn, user, reason})` when the session starts or ends (`logout` or `expired`). */
export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Keeps a login's answer `{token, user, expires_at}` and tells the listeners. */
export function beginSession(session) {
  const s = storage();
  if (s) {
    s.setItem(TOKEN_KEY, session.token);
    s.setItem(USER_KEY, JSON.stringify(session.user ?? null));
    if (session.expires_at) s.setItem(EXPIRES_KEY, session.expires_at);
  }
  emit({ signedIn: true, user: session.user });
}

/** Forgets the session at the user's request (`logout()` in api.js also tells the server). */
export function endSession() {
  clear();
  emit({ signedIn: false, reason: 'logout' });
}

/** The token no longer holds (a 401, or the live feed closed for it): back to the login view. */
export function expireSession() {
  if (!getToken()) return;
  clear();
  emit({ signedIn: false, reason: 'expired' });
}
