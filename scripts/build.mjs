#!/usr/bin/env node
// Builds dist/: the TypeScript of src/ with tsc (type checking, and the modules tests and library users import),
// the CLI and agent bundles with scripts/build-bundle.mjs (what bin/vmdesk runs), then web/ with scripts/build-web.mjs.
// `--if-stale` (what `npm start` uses) skips each part whose inputs are what they were at its last
// build: the digest of every input's path, size and mtime is kept in dist/.build-inputs.json, so a
// checkout that `npm ci` has just built starts at once, and an edit, a checkout or a new lockfile
// rebuilds only the part it touches. Silent on success; tsc's and esbuild's own messages on failure.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stampFile = join(root, 'dist', '.build-inputs.json');
const ifStale = process.argv.includes('--if-stale');

/** Every file under `dir` (recursively) that `keep` accepts. */
function files(dir, keep = () => true) {
  const out = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(path, keep));
    else if (keep(path)) out.push(path);
  }
  return out;
}

function digest(paths) {
  const h = createHash('sha256');
  for (const p of [...paths].sort()) {
    const st = statSync(join(root, p), { throwIfNoEntry: false });
    h.update(`${p}\0${st ? `${st.size}\0${st.mtimeMs}` : 'missing'}\n`);
  }
  return h.digest('hex');
}

const lock = ['package-lock.json'];
const parts = [
  {
    name: 'tsc',
    inputs: () => [...files('src', (p) => p.endsWith('.ts') && !p.endsWith('.test.ts')), 'tsconfig.json', 'tsconfig.build.json', ...lock],
    output: 'dist/cli/main.js',
    run: [process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')]],
  },
  {
    name: 'bundle',
    inputs: () => [...files('src', (p) => p.endsWith('.ts') && !p.endsWith('.test.ts')), 'scripts/build-bundle.mjs', 'package.json', ...lock],
    output: 'dist/vmdesk.mjs',
    run: [process.execPath, [join(root, 'scripts', 'build-bundle.mjs')]],
  },
  {
    name: 'web',
    inputs: () => [...files('web', (p) => !p.endsWith('.test.ts')), 'scripts/build-web.mjs', ...lock],
    output: 'dist/web/index.html',
    run: [process.execPath, [join(root, 'scripts', 'build-web.mjs')]],
  },
];

let stamps = {};
try {
  stamps = JSON.parse(readFileSync(stampFile, 'utf8'));
} catch {
  // no stamp yet: everything is stale
}

for (const part of parts) {
  const before = digest(part.inputs());
  const isBuilt = statSync(join(root, part.output), { throwIfNoEntry: false }) !== undefined;
  if (ifStale && isBuilt && stamps[part.name] === before) continue;
  const [cmd, args] = part.run;
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build: ${part.name} failed (${relative(root, args[0])} exited ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
  // The digest taken before the build: an edit made while it ran makes the next run build again.
  stamps[part.name] = before;
  mkdirSync(dirname(stampFile), { recursive: true });
  writeFileSync(stampFile, `${JSON.stringify(stamps, null, 2)}\n`);
}
