// The driver page's service worker: keeps the page's own files so `/driver` opens with no
// signal after a first visit. Registered with scope `/driver`, so it controls the driver's
// page only (never the dispatcher's map at `/`).
//
// The page's files are fetched from the network first (the server revalidates them with
// ETags, so a new release shows at once) and answered from the cache when the network fails
// or is too slow. API calls and the live feed are never touched: the page keeps its own
// offline copy of the data and its own queue of taps.

// A new name when the list of files changes: activation deletes the older caches.
const CACHE = 'fleet-driver-v2';
/** Files the page needs to start; Leaflet and the land outline are cached when first used. */
const SHELL = [
  '/driver',
  '/driver.webmanifest',
  '/driver/main.js',
  '/driver/page.js',
  '/driver/screen.js',
  '/driver/offline.js',
  '/driver/view.js',
  '/driver/model.js',
  '/driver/notice.js',
  '/driver/queue.js',
  '/driver/decline.js',
  '/driver/minimap.js',
  '/driver/alert.js',
  '/driver/charge.js',
  '/driver/clock.js',
  '/driver/driver.css',
  '/driver/icon-192.png',
  '/driver/icon-512.png',
  '/lib/session.js',
  '/lib/api.js',
  '/lib/login.js',
  '/lib/shell.js',
  '/lib/i18n.js',
  '/lib/dom.js',
  '/lib/live.js',
  '/lib/basemap.js',
  '/lib/coords.js',
  '/lib/base.css',
  '/lib/icon.svg',
  '/i18n/zh.js',
  '/i18n/en.js',
];
/** Paths whose files are kept as they are fetched. */
const CACHED_PREFIXES = ['/driver', '/lib/', '/i18n/', '/vendor/leaflet@', '/map/'];
/** Beyond this wait the cached copy is answered (the fetch still refreshes the cache). */
const NETWORK_TIMEOUT_MS = 3000;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One by one: a file that fails does not keep the others out.
    await Promise.all(SHELL.map((url) => cache.add(new Request(url, { cache: 'no-cache' })).catch(() => {})));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE && name.startsWith('fleet-driver-')) await caches.delete(name);
    await self.clients.claim();
  })());
});

function cacheable(request) {
  if (request.method !== 'GET') return false;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith('/api/')) return false;
  return CACHED_PREFIXES.some((p) => url.pathname.startsWith(p));
}

self.addEventListener('fetch', (event) => {
  if (!cacheable(event.request)) return; // the browser fetches it as if there were no worker
  event.respondWith(networkFirst(event.request));
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  const network = fetch(request).then((res) => {
    if (res.ok) cache.put(request, res.clone()).catch(() => {});
    return res;
  });
  const timeout = new Promise((resolve) => {
    setTimeout(resolve, NETWORK_TIMEOUT_MS, null);
  });
  try {
    const res = await Promise.race([network, timeout]);
    if (res) return res;
  } catch {
    /* offline: the cache answers */
  }
  const cached = await cache.match(request, { ignoreSearch: true });
  if (cached) return cached;
  return network; // nothing cached: wait for the network after all (or fail as it fails)
}
