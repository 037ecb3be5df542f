// The driver's last data, kept in localStorage per user so that the page shows it at once on
// the next start, before the server answers or when it cannot be reached.

const CACHE_PREFIX = 'fleet.driver.cache.';

function key(user) {
  return CACHE_PREFIX + (user.id ?? user.username);
}

/** The copy kept for `user` (`{at, orders, done, month, vehicle, accept_timeout_s}`), or null. */
export function readCopy(user) {
  try {
    const v = JSON.parse(localStorage.getItem(key(user)) ?? 'null');
    return v && Array.isArray(v.orders) ? v : null;
  } catch {
    return null;
  }
}

/** Keeps `copy` for `user`, replacing the last one. */
export function writeCopy(user, copy) {
  try {
    localStorage.setItem(key(user), JSON.stringify(copy));
  } catch {
    /* not kept: the page still works online */
  }
}
