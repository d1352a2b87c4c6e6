/// <reference types="vite/client" />
// Browser side of test/crypto/browser.test.ts: exposes crypto/ exactly as the web app bundles it.
import wasmUrl from 'wasm-themis/src/libthemis.wasm?url';
import * as zr from '../../../crypto/index.ts';

const w = window as unknown as { zr: typeof zr; wasmUrl: string; ready: boolean };
w.zr = zr;
w.wasmUrl = wasmUrl;
w.ready = true;
