// msgpack-lite ships no types; the tests use it only as the official SaltyRTC client's codec.
declare module 'msgpack-lite' {
  export function encode(value: unknown): Buffer;
  export function decode(bytes: Uint8Array): any;
  const _default: { encode: typeof encode; decode: typeof decode };
  export default _default;
}
