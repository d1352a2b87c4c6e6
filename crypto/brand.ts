// Branded types keep ids and keys apart at compile time (as ts-mls src/util/brand.ts).
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };
