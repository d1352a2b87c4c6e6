import { expect } from 'vitest';

/** Runs `fn`, asserts it throws an instance of `cls` with `code`, and returns the error. */
export function expectThrows<E extends Error & { code: string }>(
  fn: () => unknown,
  cls: abstract new (...args: never[]) => E,
  code: string,
  messagePart?: string,
): E {
  let thrown: unknown;
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${cls.name} but got a result: ${String(result)}`).toBeInstanceOf(cls);
  const err = thrown as E;
  expect(err.code).toBe(code);
  if (messagePart !== undefined) expect(err.message).toContain(messagePart);
  return err;
}

export async function expectRejects<E extends Error & { code: string }>(
  p: Promise<unknown>,
  cls: abstract new (...args: never[]) => E,
  code: string,
  messagePart?: string,
): Promise<E> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(cls);
  const err = thrown as E;
  expect(err.code).toBe(code);
  if (messagePart !== undefined) expect(err.message).toContain(messagePart);
  return err;
}

/** A copy of `bytes` with byte `index` XORed by `mask` (mask != 0). */
export function flipByte(bytes: Uint8Array, index: number, mask: number): Uint8Array {
  const out = bytes.slice();
  out[index] = (out[index] as number) ^ mask;
  return out;
}
