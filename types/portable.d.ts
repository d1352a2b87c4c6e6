// Globals that both browsers and Node.js (>= 20) provide, declared for crypto/ and protocol/ alone:
// their type check (crypto/tsconfig.json, protocol/tsconfig.json) has neither lib.dom nor Node's
// types, so code there can use only what runs on both platforms. Declared as narrowly as the code
// needs; widen a declaration here only for an API that exists, with the same behaviour, on both.

interface URL {
  hash: string;
  readonly host: string;
  readonly hostname: string;
  readonly href: string;
  readonly origin: string;
  readonly pathname: string;
  readonly port: string;
  readonly protocol: string;
  readonly search: string;
  readonly username: string;
  readonly password: string;
  toString(): string;
}
declare var URL: { prototype: URL; new (url: string | URL, base?: string | URL): URL };

interface TextEncoder {
  encode(input?: string): Uint8Array;
}
declare var TextEncoder: { prototype: TextEncoder; new (): TextEncoder };

interface TextDecoder {
  decode(input?: Uint8Array): string;
}
declare var TextDecoder: { prototype: TextDecoder; new (label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean }): TextDecoder };

declare function setTimeout(handler: () => void, timeout?: number): unknown;
declare function clearTimeout(id: unknown): void;
declare function queueMicrotask(callback: () => void): void;

interface CryptoKey {
  readonly type: string;
}
interface SubtleCrypto {
  importKey(
    format: 'raw',
    keyData: Uint8Array,
    algorithm: string | { name: string },
    extractable: boolean,
    keyUsages: string[],
  ): Promise<CryptoKey>;
  deriveBits(
    algorithm: { name: string; hash?: string; salt?: Uint8Array; iterations?: number },
    baseKey: CryptoKey,
    length: number,
  ): Promise<ArrayBuffer>;
  encrypt(
    algorithm: { name: string; iv: Uint8Array; additionalData?: Uint8Array; tagLength?: number },
    key: CryptoKey,
    data: Uint8Array,
  ): Promise<ArrayBuffer>;
  decrypt(
    algorithm: { name: string; iv: Uint8Array; additionalData?: Uint8Array; tagLength?: number },
    key: CryptoKey,
    data: Uint8Array,
  ): Promise<ArrayBuffer>;
}
interface Crypto {
  readonly subtle: SubtleCrypto;
  getRandomValues<T extends Uint8Array>(array: T): T;
}
declare var crypto: Crypto;
