#!/usr/bin/env node
// The `zeroroom` command. Plain JS so it runs right after `npm install` with no build step:
// it registers tsx's ESM loader (tsx is a runtime dependency) and hands over to the TypeScript CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../signaling/cli.ts');
process.exitCode = await main(process.argv.slice(2));
