// ZeroRoom service worker (template; vite.config.ts fills in the file list at build time).
// Precaches the app shell so the app starts offline; never caches /config.json (TURN credentials
// are short-lived) or anything that is not a same-origin GET.
const VERSION = '__VERSION__';
const PRECACHE = __PRECACHE__;
const CACHE = `zeroroom-shell-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(PRECACHE))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith('zeroroom-shell-') && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname === '/config.json' || url.pathname === '/healthz' || url.pathname === '/metrics') return;
  if (req.mode === 'navigate') {
    // Network first for the page itself (new deployments), the cached shell when offline.
    event.respondWith(fetch(req).catch(() => caches.match('./', { ignoreSearch: true }).then((r) => r || Response.error())));
    return;
  }
  event.respondWith(caches.match(req).then((hit) => hit || fetch(req)));
});
