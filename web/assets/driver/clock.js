// Time on the driver's page: the accept deadline is counted from the server's `assigned_at`,
// so a phone whose clock is off would count wrong; the server's own clock (its `Date`
// header) corrects that. Also the Asia/Shanghai day and month that "today's trips" and
// "this month" mean, whatever the phone's time zone.

/** Offsets below this are the Date header's one-second resolution, not a wrong clock. */
const TRUST_PHONE_MS = 2000;
/** China has no daylight saving time: Asia/Shanghai is always UTC+8. */
const SHANGHAI_OFFSET = '+08:00';

let offsetMs = 0; // server time − phone time

/** Milliseconds since the epoch by the server's clock (as far as it is known). */
export function serverNow() {
  return Date.now() + offsetMs;
}

/**
 * Measures the server's clock against the phone's from one small request. Failures leave
 * the phone's clock in use.
 */
export async function syncClock() {
  try {
    const sent = Date.now();
    const res = await fetch('/healthz', { cache: 'no-store' });
    const received = Date.now();
    const date = Date.parse(res.headers.get('Date') ?? '');
    if (!Number.isFinite(date)) return;
    // The header is truncated to the second: its middle is half a second later.
    const offset = date + 500 - (sent + received) / 2;
    offsetMs = Math.abs(offset) > TRUST_PHONE_MS ? offset : 0;
  } catch {
    /* offline: keep the phone's clock */
  }
}

/** Whole seconds left until `deadlineMs` (server clock), never below 0. */
export function secondsLeft(deadlineMs) {
  return Math.max(0, Math.ceil((deadlineMs - serverNow()) / 1000));
}

const ymd = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' });

function parts(ms) {
  const [y, m, d] = ymd.format(new Date(ms)).split('-').map(Number);
  return { y, m, d };
}

const pad = (n) => String(n).padStart(2, '0');
const iso = (y, m, d) => {
  // Date.UTC normalizes a 13th month or a 32nd day into the next year or month.
  const t = new Date(Date.UTC(y, m - 1, d));
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}T00:00:00${SHANGHAI_OFFSET}`;
};

/** Today in Asia/Shanghai as `{from, to}` RFC 3339 bounds (from inclusive, to exclusive). */
export function todayRange(now = serverNow()) {
  const { y, m, d } = parts(now);
  return { from: iso(y, m, d), to: iso(y, m, d + 1) };
}

/** This month in Asia/Shanghai as `{from, to}` RFC 3339 bounds. */
export function monthRange(now = serverNow()) {
  const { y, m } = parts(now);
  return { from: iso(y, m, 1), to: iso(y, m + 1, 1) };
}
