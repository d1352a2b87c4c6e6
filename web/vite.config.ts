import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { BUILD_HASH_FILE, BUILD_HASH_PLACEHOLDER, buildHashOfFiles, type BuiltFile } from './build-hash.ts';

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

/** Every file under `dir`, paths relative to it with `/` separators. */
function filesUnder(dir: string, prefix = ''): BuiltFile[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? filesUnder(path.join(dir, e.name), `${prefix}${e.name}/`)
      : [{ path: `${prefix}${e.name}`, bytes: new Uint8Array(readFileSync(path.join(dir, e.name))) }],
  );
}

/**
 * The build hash (docs/PROTOCOL.md section 8): computed last, over every file the build writes
 * (chunks still holding the placeholder, assets, index.html, sw.js, and web/public), then put into the
 * one chunk that shows it and published as dist/build-hash.txt.
 */
function buildHash(): Plugin {
  return {
    name: 'zeroroom-build-hash',
    apply: 'build',
    enforce: 'post',
    generateBundle: {
      order: 'post',
      handler(_options, bundle) {
        const enc = new TextEncoder();
        const files: BuiltFile[] = filesUnder(here('./public'));
        let carriers = 0;
        for (const [name, item] of Object.entries(bundle)) {
          if (item.type === 'chunk') carriers += item.code.split(BUILD_HASH_PLACEHOLDER).length - 1;
          const bytes =
            item.type === 'chunk' ? enc.encode(item.code) : typeof item.source === 'string' ? enc.encode(item.source) : item.source;
          files.push({ path: name, bytes });
        }
        if (carriers !== 1)
          this.error(`the build hash placeholder occurs ${carriers} times in the bundle, expected once (web/build-info.ts)`);
        const hash = buildHashOfFiles(files);
        for (const item of Object.values(bundle)) if (item.type === 'chunk') item.code = item.code.replace(BUILD_HASH_PLACEHOLDER, hash);
        this.emitFile({ type: 'asset', fileName: BUILD_HASH_FILE, source: `${hash}\n` });
      },
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
  plugins: [serviceWorker(), buildHash()],
});
