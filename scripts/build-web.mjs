#!/usr/bin/env node
// Bundles web/ into dist/web/ (pages at the top, scripts and CSS under assets/)
// as served by src/server per docs/ui.md. Silent on success; on failure
// esbuild's own message goes to stderr and the exit status is 1.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'web');
const out = join(root, 'dist', 'web');
const assets = join(out, 'assets');

// IronRDP's web client (docs/ui.md, "RDP in the browser"): its .wasm is served under a name that
// carries a hash of its bytes, so browsers may cache it for good; the page learns the name at build time.
const require = createRequire(import.meta.url);
const wasmSource = join(dirname(require.resolve('ironrdp-wasm')), 'rdp_client_bg.wasm');

/** esbuild's options for every page script: one file per page (the console must not fetch a shared chunk before it can connect). */
const pageBundle = {
  absWorkingDir: root,
  outdir: assets,
  entryNames: '[name]',
  format: 'esm',
  bundle: true,
  splitting: false,
  minify: true,
  sourcemap: 'linked',
  target: ['chrome110', 'firefox110', 'safari16'],
  tsconfig: join(web, 'tsconfig.json'),
  logLevel: 'error',
};

try {
  await mkdir(assets, { recursive: true });
  const wasm = await readFile(wasmSource);
  const wasmName = `ironrdp-${createHash('sha256').update(wasm).digest('hex').slice(0, 16)}.wasm`;
  for (const old of await readdir(assets)) if (old.startsWith('ironrdp-') && old !== wasmName) await rm(join(assets, old));
  await Promise.all([
    writeFile(join(assets, wasmName), wasm),
    build({ ...pageBundle, entryPoints: [join(web, 'rdp.ts')], define: { __IRONRDP_WASM_URL__: JSON.stringify(`/assets/${wasmName}`) } }),
    build({ ...pageBundle, entryPoints: ['dashboard', 'console-boot', 'console'].map((name) => join(web, `${name}.ts`)) }),
    copyFile(join(web, 'style.css'), join(assets, 'style.css')),
    ...['index.html', 'console.html', 'rdp.html'].map((page) => copyFile(join(web, page), join(out, page))),
  ]);
} catch (err) {
  // esbuild has already printed its diagnostics (logLevel 'error'); fs errors have not.
  if (!Array.isArray(err?.errors)) console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
