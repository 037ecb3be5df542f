// The login view every page mounts while signed out (ids #login-username, #login-password,
// #login-submit, #login-error): the form, its errors (wrong password, throttled, offline) in
// the current language, and the sign-in itself through api.js.

import { login, ApiError } from './api.js';
import { h } from './dom.js';
import { t, onLangChange } from './i18n.js';

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
