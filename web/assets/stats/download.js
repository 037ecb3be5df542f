// Downloads that need the bearer token: a plain link cannot send it, so the file is fetched as
// a blob and saved through a temporary object URL under the server's file name.

import { apiFetch } from '../lib/api.js';
import { h } from '../lib/dom.js';

/** How long the object URL lives after the click (the browser has copied it by then). */
const REVOKE_AFTER_MS = 60_000;

/** The file name of a `Content-Disposition` header (`filename*=UTF-8''…` preferred), or null. */
export function filenameOf(disposition) {
  if (!disposition) return null;
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch {
      /* fall through to the plain name */
    }
  }
  const plain = /filename\s*=\s*(?:"([^"]*)"|([^;]+))/.exec(disposition);
  const name = plain ? (plain[1] ?? plain[2]).trim() : null;
  // Only a bare name: never a path.
  return name ? name.replace(/[/\\]/g, '_') : null;
}

/**
 * Fetches `url` (an absolute path on this server) with the token and saves it. Resolves to
 * `{name, size, type}`; rejects with ApiError.
 */
export async function download(url, fallbackName) {
  const res = await apiFetch(url);
  const blob = await res.blob();
  const name = filenameOf(res.headers.get('Content-Disposition')) ?? fallbackName;
  const href = URL.createObjectURL(blob);
  const a = h('a', { href, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), REVOKE_AFTER_MS);
  return { name, size: blob.size, type: blob.type };
}
