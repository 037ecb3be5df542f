// The frame every page runs in: labels the static page in the chosen language, wires the
// language switch and the logout button, and follows the session. With a token in this tab the
// page starts at once; without one (or once it is logged out, revoked or expired: a 401 from
// the API, or the live feed closed for it) the login form shows, with a notice when the
// session ran out.

import { logout } from './api.js';
import { byId } from './dom.js';
import { applyStatic, onLangChange, t, toggleLang } from './i18n.js';
import { mountLogin } from './login.js';
import { getToken, getUser, onSessionChange } from './session.js';

/**
 * Boots a page.
 * @param {object} o
 * @param {string[]} o.views  ids shown while signed in and hidden while the login form shows
 * @param {(user: object) => ({stop?: () => void}|null|undefined)} o.start  starts a session
 *   for the signed-in user; what it returns is stopped when the session ends
 * @param {(reason: 'logout'|'expired') => void} [o.stop]  after the session's own stop
 * @param {() => void} [o.relabel]  after every language change
 */
export function bootPage({ views, start, stop, relabel }) {
  applyStatic(document);
  byId('lang-switch').addEventListener('click', toggleLang);
  byId('logout').addEventListener('click', () => logout());
  let session = null;
  let signedIn = false;
  let unmountLogin = null;

  function showLogin(notice) {
    for (const id of views) byId(id).hidden = true;
    const view = byId('login-view');
    view.hidden = false;
    unmountLogin?.();
    unmountLogin = mountLogin(view, { notice });
  }

  function begin() {
    if (signedIn) return;
    signedIn = true;
    unmountLogin?.();
    unmountLogin = null;
    byId('login-view').hidden = true;
    for (const id of views) byId(id).hidden = false;
    labelUser();
    session = start(getUser() ?? {});
  }

  function end(reason) {
    if (!signedIn) return;
    signedIn = false;
    session?.stop?.();
    session = null;
    stop?.(reason);
    showLogin(reason === 'expired' ? 'session.expired' : undefined);
  }

  onLangChange(() => {
    if (signedIn) labelUser();
    relabel?.();
  });
  onSessionChange((ev) => (ev.signedIn ? begin() : end(ev.reason)));
  if (getToken()) begin();
  else showLogin();
}

/** The user's name and role in the header, on the pages that show them. */
function labelUser() {
  const user = getUser();
  const name = document.getElementById('user-name');
  const role = document.getElementById('user-role');
  if (name) name.textContent = user?.username ?? '';
  if (role) role.textContent = user?.role ? t(`role.${user.role}`) : '';
}
