/**
 * The architecture gates of `npm test` (docs/ARCHITECTURE.md), each shown to hold on the tree and
 * to fail on a planted violation: import rules, per-folder TypeScript platforms, ESLint's promise
 * and type-import rules, the formatter, and the test tiers.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { checkTree } from './import-rules.ts';
import { tierOf } from '../tiers.ts';

const root = path.resolve(import.meta.dirname, '../..');
/** Probe files live inside the repository (ESLint and the tsconfigs resolve from it); removed after. */
const probeRoot = mkdtempSync(path.join(import.meta.dirname, '.probe-'));
afterAll(() => rmSync(probeRoot, { recursive: true, force: true }));

function writeProbe(rel: string, text: string): string {
  const file = path.join(probeRoot, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

describe('import rules', () => {
  it('hold on the tree', () => {
    expect(checkTree(root)).toEqual([]);
  });

  const planted: [string, string, RegExp][] = [
    ['crypto/a.ts', "import { DecodeError } from '../protocol/errors.ts';", /crypto\/ must not import protocol\//],
    ['protocol/a.ts', "import { readFileSync } from 'node:fs';", /must not import Node built-ins/],
    ['protocol/b.ts', "import { WebSocket } from 'ws';", /protocol\/ may import only the packages/],
    ['protocol/c.ts', "export { openDB } from 'idb';", /protocol\/ may import only the packages/],
    ['protocol/d.ts', "const m = import('../signaling/x.ts');", /protocol\/ must not import signaling\//],
    ['protocol/e.ts', "import '../web/app.ts';", /protocol\/ must not import web\//],
    ['signaling/a.ts', "import type { RoomView } from '../web/session/types.ts';", /signaling\/ must not import web\//],
    ['web/a.ts', "import { serve } from '../signaling/cli.ts';", /web\/ must not import signaling\//],
    ['web/b.ts', "import { readFile } from 'fs/promises';", /web\/ must not import Node built-ins/],
    ['web/c.ts', "import ndc from 'node-datachannel';", /web\/ must not import Node-only packages/],
  ];
  it.each(planted)('refuse %s: %s', (rel, source, rule) => {
    const dir = mkdtempSync(path.join(probeRoot, 'imports-'));
    writeProbe(path.relative(probeRoot, path.join(dir, rel)), `${source}\n`);
    const found = checkTree(dir);
    expect(found).toHaveLength(1);
    expect(found[0]?.rule).toMatch(rule);
  });

  it('allow what the layering allows (and ignore imports in comments and strings)', () => {
    const dir = mkdtempSync(path.join(probeRoot, 'allowed-'));
    writeProbe(path.relative(probeRoot, path.join(dir, 'crypto/a.ts')), "import nacl from 'tweetnacl';\nimport { b } from './b.ts';\n");
    writeProbe(
      path.relative(probeRoot, path.join(dir, 'protocol/a.ts')),
      "import { x } from '../crypto/a.ts';\n// import 'ws'\nconst s = \"import 'node:fs'\";\n",
    );
    writeProbe(
      path.relative(probeRoot, path.join(dir, 'signaling/a.ts')),
      "import { WebSocket } from 'ws';\nimport { x } from '../protocol/a.ts';\n",
    );
    writeProbe(
      path.relative(probeRoot, path.join(dir, 'web/a.ts')),
      "import { openDB } from 'idb';\nimport { x } from '../protocol/a.ts';\n",
    );
    expect(checkTree(dir)).toEqual([]);
  });
});

/** Type-check `files` with the compiler options of one of our tsconfigs; returns diagnostic texts. */
function typeErrors(config: string, files: string[]): string[] {
  const configPath = path.join(root, config);
  const read = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(configPath), undefined, configPath);
  const declarations = parsed.fileNames.filter((f) => f.endsWith('.d.ts'));
  const program = ts.createProgram({ rootNames: [...files, ...declarations], options: parsed.options });
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('per-folder TypeScript platforms', () => {
  const nodeProbe = 'export const v: string = process.version;\n';
  const domProbe = 'export const t: string = document.title;\n';
  const portableProbe = 'export const n: number = new TextEncoder().encode("x").length;\n';
  const cases: [string, string, string, RegExp | null][] = [
    ['web', 'web/tsconfig.json', nodeProbe, /Cannot find name 'process'/],
    ['web', 'web/tsconfig.json', domProbe, null],
    ['signaling', 'signaling/tsconfig.json', domProbe, /Cannot find name 'document'/],
    ['signaling', 'signaling/tsconfig.json', nodeProbe, null],
    ['protocol', 'protocol/tsconfig.json', domProbe, /Cannot find name 'document'/],
    ['protocol', 'protocol/tsconfig.json', nodeProbe, /Cannot find name 'process'/],
    ['protocol', 'protocol/tsconfig.json', portableProbe, null],
    ['crypto', 'crypto/tsconfig.json', nodeProbe, /Cannot find name 'process'/],
  ];
  it.each(cases)('%s (%s): %s', (part, config, source, expected) => {
    const file = writeProbe(`${part}-${Math.random().toString(36).slice(2)}.ts`, source);
    const errors = typeErrors(config, [file]);
    if (expected === null) expect(errors).toEqual([]);
    else expect(errors.join('\n')).toMatch(expected);
  });
});

describe('ESLint', () => {
  // Each probe gets its own directory and tsconfig naming only that file: typed linting caches a
  // program per tsconfig, and a file written after that program was built is "not in the project".
  const lint = async (source: string): Promise<string[]> => {
    const dir = `lint-${Math.random().toString(36).slice(2)}`;
    const file = writeProbe(`${dir}/probe.ts`, source);
    const tsconfig = writeProbe(
      `${dir}/tsconfig.json`,
      JSON.stringify({ extends: path.join(root, 'tsconfig.json'), files: ['./probe.ts'], include: [], exclude: [] }),
    );
    const eslint = new ESLint({
      cwd: root,
      ignore: false, // probe directories are ignored by the tree's lint run
      overrideConfig: {
        languageOptions: { parserOptions: { projectService: false, project: tsconfig, tsconfigRootDir: path.dirname(file) } },
      },
    });
    const [result] = await eslint.lintFiles([file]);
    return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
  };

  it('passes clean code', async () => {
    expect(await lint('export async function f(): Promise<void> {\n  await Promise.resolve();\n}\n')).toEqual([]);
  });
  it('refuses a floating promise', async () => {
    expect(await lint('export function f(): void {\n  Promise.resolve(1);\n}\n')).toContain('@typescript-eslint/no-floating-promises');
  });
  it('refuses a promise where a void callback is expected', async () => {
    expect(await lint('export const xs = [1].forEach(async () => {\n  await Promise.resolve();\n});\n')).toContain(
      '@typescript-eslint/no-misused-promises',
    );
  });
  it('refuses a value import used only as a type', async () => {
    expect(await lint("import { Readable } from 'node:stream';\nexport let r: Readable | null = null;\n")).toContain(
      '@typescript-eslint/consistent-type-imports',
    );
  });
});

describe('formatter', () => {
  const options = async (file: string): Promise<prettier.Options> => ({ ...(await prettier.resolveConfig(file)), filepath: file });
  it('accepts formatted code and refuses unformatted code, with the committed config', async () => {
    const file = path.join(root, 'protocol', 'probe.ts');
    expect(await prettier.check("export const a = { b: 'c' };\n", await options(file))).toBe(true);
    expect(await prettier.check('export const a = {b:"c"}\n', await options(file))).toBe(false);
  });
  it('has a committed config that the tree follows (npm run format:check runs it on every file)', () => {
    const config = JSON.parse(readFileSync(path.join(root, '.prettierrc.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ singleQuote: true, printWidth: 140 });
  });
});

describe('test tiers', () => {
  it('classify by what a test imports, through its helpers', () => {
    const unit = writeProbe('tiers/unit.test.ts', "import { encode } from '../../../../protocol/msgpack.ts';\n");
    const helper = writeProbe('tiers/helper.ts', "import { WebSocket } from 'ws';\nexport const W = WebSocket;\n");
    const integration = writeProbe('tiers/integration.test.ts', "import { W } from './helper.ts';\n");
    const e2e = writeProbe('tiers/e2e.test.ts', "import { chromium } from 'playwright-core';\n");
    expect(helper).toMatch(/helper\.ts$/);
    expect(tierOf(unit, root)).toBe('unit');
    expect(tierOf(integration, root)).toBe('integration');
    expect(tierOf(e2e, root)).toBe('e2e');
  });
});
