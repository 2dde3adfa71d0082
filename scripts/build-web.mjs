#!/usr/bin/env node
// Bundles web/ into dist/web/ (pages at the top, scripts and CSS under assets/)
// as served by src/server per docs/ui.md. Silent on success; on failure
// esbuild's own message goes to stderr and the exit status is 1.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'web');
const out = join(root, 'dist', 'web');
const assets = join(out, 'assets');

try {
  await mkdir(assets, { recursive: true });
  await Promise.all([
    build({
      absWorkingDir: root,
      entryPoints: ['dashboard', 'console-boot', 'console'].map((name) => join(web, `${name}.ts`)),
      outdir: assets,
      entryNames: '[name]',
      format: 'esm',
      bundle: true,
      // One file per page: the console must not fetch a shared chunk before it can connect.
      splitting: false,
      minify: true,
      sourcemap: 'linked',
      target: ['chrome110', 'firefox110', 'safari16'],
      tsconfig: join(web, 'tsconfig.json'),
      logLevel: 'error',
    }),
    copyFile(join(web, 'style.css'), join(assets, 'style.css')),
    ...['index.html', 'console.html'].map((page) => copyFile(join(web, page), join(out, page))),
  ]);
} catch (err) {
  // esbuild has already printed its diagnostics (logLevel 'error'); fs errors have not.
  if (!Array.isArray(err?.errors)) console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
