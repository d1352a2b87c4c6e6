import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

/** Files in web/public that the service worker precaches with the built bundle. */
const PUBLIC_SHELL = ['manifest.webmanifest', 'icons/icon-192.png', 'icons/icon-512.png'];

/**
 * Emits dist/sw.js from web/sw/sw.js with the list of every built file (hashed names are only
 * known at build time), so the app shell, the Themis chunk and the wasm work offline.
 */
function serviceWorker(): Plugin {
  return {
    name: 'zeroroom-sw',
    apply: 'build',
    generateBundle(_options, bundle) {
      const files = ['./', ...Object.keys(bundle).map((f) => `./${f}`), ...PUBLIC_SHELL.map((f) => `./${f}`)].sort();
      const version = createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 16);
      const template = readFileSync(here('./sw/sw.js'), 'utf8');
      const source = template.replace('__PRECACHE__', JSON.stringify(files)).replace('__VERSION__', version);
      this.emitFile({ type: 'asset', fileName: 'sw.js', source });
    },
  };
}

export default defineConfig({
  root: here('.'),
  publicDir: here('./public'),
  resolve: {
    alias: [
      // wasm-themis' glue has a Node-only require("ws"); the browser never takes that branch.
      { find: /^ws$/, replacement: here('./shims/empty.ts') },
      // Bundling simple-peer from source needs Node globals; its prebuilt file does not (platform.md).
      { find: /^simple-peer$/, replacement: 'simple-peer/simplepeer.min.js' },
    ],
  },
  build: {
    outDir: here('./dist'),
    emptyOutDir: true,
    target: 'es2022',
    // Never inline assets as data: URLs (CSP img-src / connect-src stay 'self').
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2500,
  },
  plugins: [serviceWorker()],
});
