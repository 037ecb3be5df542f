// Sessions for every page: the token lives in sessionStorage, so each tab signs in on its
// own and closing the tab forgets it. Also the login view (ids #login-username,
// #login-password, #login-submit, #login-error) any page can mount.

import { api, ApiError } from './api.js';
import { h } from './dom.js';
import { t, onLangChange } from './i18n.js';

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

function save(session) {
  const s = storage();
  if (!s) return;
  s.setItem(TOKEN_KEY, session.token);
  s.setItem(USER_KEY, JSON.stringify(session.user ?? null));
  if (session.expires_at) s.setItem(EXPIRES_KEY, session.expires_at);
}

function clear() {
  const s = storage();
  if (!s) return;
  s.removeItem(TOKEN_KEY);
  s.removeItem(USER_KEY);
  s.removeItem(EXPIRES_KEY);
}

/** Calls `fn({signedIn, reason})` when the session starts or ends (`logout` or `expired`). */
export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(event) {
  for (const fn of listeners) fn(event);
}

/** Signs in; resolves to the user. Rejects with ApiError (401 wrong password, 429 throttled). */
export async function login(username, password) {
  const session = await api('/auth/login', { method: 'POST', body: { username, password }, auth: false });
  save(session);
  emit({ signedIn: true, user: session.user });
  return session.user;
}

/** Revokes the token on the server (best effort) and forgets it here. */
export async function logout() {
  const token = getToken();
  clear();
  if (token) {
    // Sent with the token read before clearing; failure changes nothing for the user.
    fetch('/api/v1/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
  emit({ signedIn: false, reason: 'logout' });
}

/** The server answered 401: the token is gone or expired. Back to the login view. */
export function expireSession() {
  if (!getToken()) return;
  clear();
  emit({ signedIn: false, reason: 'expired' });
}

/**
 * Renders the login view into `container`. `notice` is an optional message key shown above
 * the form (e.g. `session.expired`). Returns a function that unmounts it.
 */
export function mountLogin(container, { notice } = {}) {
  const username = h('input', {
    id: 'login-username', name: 'username', type: 'text', autocomplete: 'username',
    required: true, autocapitalize: 'none', spellcheck: 'false',
  });
  const password = h('input', {
    id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
  });
  const error = h('p', { id: 'login-error', class: 'login-error', role: 'alert', hidden: true });
  const submit = h('button', { id: 'login-submit', type: 'submit', class: 'btn btn-primary' });
  const labelUser = h('label', { for: 'login-username' });
  const labelPass = h('label', { for: 'login-password' });
  const title = h('h1', { class: 'login-title' });
  const noticeEl = h('p', { class: 'login-notice', hidden: !notice });

  let errorKey = null;
  let errorVars = null;
  let busy = false;

  function showError(key, vars) {
    errorKey = key;
    errorVars = vars;
    error.textContent = key ? t(key, vars) : '';
    error.hidden = !key;
  }

  function label() {
    title.textContent = t('login.title');
    labelUser.textContent = t('login.username');
    labelPass.textContent = t('login.password');
    submit.textContent = t(busy ? 'login.busy' : 'login.submit');
    if (notice) noticeEl.textContent = t(notice);
    if (errorKey) error.textContent = t(errorKey, errorVars);
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    if (busy) return;
    const user = username.value.trim();
    if (!user || !password.value) {
      showError('login.error.missing');
      return;
    }
    busy = true;
    submit.disabled = true;
    label();
    showError(null);
    try {
      await login(user, password.value);
    } catch (e) {
      password.value = '';
      if (!(e instanceof ApiError)) showError('login.error.other', { message: String(e?.message ?? e) });
      else if (e.status === 401) showError('login.error.credentials');
      else if (e.status === 429) {
        showError(e.retryAfter != null ? 'login.error.throttled' : 'login.error.throttled_nowait', { seconds: e.retryAfter });
      } else if (e.status === 0) showError('login.error.network');
      else showError('login.error.other', { message: e.message });
      password.focus();
    } finally {
      busy = false;
      submit.disabled = false;
      label();
    }
  }

  const form = h('form', { class: 'login-card', novalidate: true, onsubmit: onSubmit },
    title, noticeEl,
    h('div', { class: 'field' }, labelUser, username),
    h('div', { class: 'field' }, labelPass, password),
    error, submit);
  container.textContent = '';
  container.append(form);
  label();
  const stop = onLangChange(label);
  username.focus();
  return () => {
    stop();
    container.textContent = '';
  };
}
