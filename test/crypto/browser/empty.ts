// Stand-in for `ws`, which the wasm-themis glue requires only on its Node path.
export default {};
