// The new-assignment alert: a beep made with WebAudio (no sound file to load) and a
// vibration. Browsers allow sound only after the user has touched the page, so the audio
// context is created at the first gesture; until then `armed()` is false and the page asks
// for a tap.

let ctx = null;
const listeners = new Set();

function unlock() {
  if (!ctx) {
    const Ctx = window.AudioContext ?? window.webkitAudioContext;
    if (!Ctx) return;
    try {
      ctx = new Ctx();
    } catch {
      return;
    }
  }
  if (ctx.state === 'suspended') ctx.resume().catch(() => {});
  for (const fn of listeners) fn();
}

for (const type of ['pointerdown', 'keydown', 'touchstart']) {
  window.addEventListener(type, unlock, { capture: true, passive: true });
}

/** Whether a beep can sound now (a gesture has unlocked audio). */
export function armed() {
  return ctx != null && ctx.state !== 'suspended';
}

/** Calls `fn` when audio gets unlocked; returns a function that stops it. */
export function onArmed(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Three short rising beeps and a vibration, where the browser allows each. */
export function alertNewOrder() {
  try {
    navigator.vibrate?.([300, 120, 300, 120, 300]);
  } catch {
    /* not allowed without a gesture in some browsers */
  }
  if (!ctx || ctx.state !== 'running') return;
  const start = ctx.currentTime + 0.02;
  [660, 880, 1100].forEach((freq, i) => {
    const t0 = start + i * 0.22;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = 'square';
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0);
    gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.18);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t0);
    osc.stop(t0 + 0.2);
  });
}
