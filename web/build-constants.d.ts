// Values scripts/build-web.mjs substitutes at build time (esbuild `define`).

/** `/assets/ironrdp-<sha256/16>.wasm`: IronRDP's WebAssembly under its content-hashed, immutable name. */
declare const __IRONRDP_WASM_URL__: string;
