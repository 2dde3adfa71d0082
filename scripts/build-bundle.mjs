#!/usr/bin/env node
// Bundles the CLI and the agent with every dependency inlined: dist/vmdesk.mjs (what bin/vmdesk loads; its lazily
// loaded commands in dist/chunks/) and dist/agent.mjs (one file, what the CLI spawns for detached tunnels). Node
// then reads and compiles a few files instead of resolving and loading ~150 (the measured start-up costs are in
// docs/performance.md). tsc's dist/**/*.js stays for type checking and for what imports the sources.
// ssh2's native crypto binding and cpu-features stay outside the bundle, loaded from node_modules as before.
// Both bundles get the same build id, so the CLI recognises the agent it started as its own.
import { build } from 'esbuild';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SPLIT_CLI = process.env.VMDESK_BUNDLE_SPLIT !== '0';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const buildId = `${version}+${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

// CommonJS dependencies (ssh2) call require() and read __dirname; an ES module has neither.
const banner = [
  "import { createRequire as __vmdeskCreateRequire } from 'node:module';",
  "import { fileURLToPath as __vmdeskFileURLToPath } from 'node:url';",
  "import { dirname as __vmdeskDirname } from 'node:path';",
  'const require = __vmdeskCreateRequire(import.meta.url);',
  'const __filename = __vmdeskFileURLToPath(import.meta.url);',
  'const __dirname = __vmdeskDirname(__filename);',
].join('\n');

/**
 * ssh2 loads its binding as require('./crypto/build/Release/sshcrypto.node'), relative to its own file; from the
 * bundle it is reached as a package path instead (found in node_modules wherever vmdesk is installed).
 */
const nativeBinding = {
  name: 'ssh2-native-binding',
  setup(b) {
    b.onResolve({ filter: /sshcrypto\.node$/ }, () => ({ path: 'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node', external: true }));
  },
};

/**
 * src/ssh/chain.ts reads ssh2's algorithm lists with a runtime require('ssh2/lib/protocol/constants.js'), which
 * a bundle would satisfy from node_modules: a second copy of ssh2's protocol modules (~15 ms more at start).
 * Inside the bundle that require is pointed at the bundled copy.
 */
const bundledSsh2Constants = {
  name: 'bundled-ssh2-constants',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]ssh[\\/]chain\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const from = "require('ssh2/lib/protocol/constants.js')";
      if (!source.includes(from)) return { contents: source, loader: 'ts' };
      return {
        contents: `import * as __vmdeskSsh2Constants from 'ssh2/lib/protocol/constants.js';\n${source.replace(from, '__vmdeskSsh2Constants')}`,
        loader: 'ts',
        resolveDir: dirname(args.path),
      };
    });
  },
};

const common = {
  absWorkingDir: root,
  outdir: join(root, 'dist'),
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Optional native helpers of ssh2 and ws: loaded from node_modules when installed, skipped when not.
  external: ['cpu-features', 'bufferutil', 'utf-8-validate'],
  plugins: [nativeBinding, bundledSsh2Constants],
  define: { __VMDESK_BUILD_ID__: JSON.stringify(buildId), __VMDESK_VERSION__: JSON.stringify(version) },
  banner: { js: banner },
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'error',
};

try {
  // Chunk names carry content hashes: the previous build's must not pile up.
  rmSync(join(root, 'dist', 'chunks'), { recursive: true, force: true });
  await Promise.all([
    // The agent always needs all of it: one file.
    build({ ...common, entryPoints: { agent: join(root, 'src', 'daemon', 'agent-main.ts') }, splitting: false }),
    // The CLI's commands are imported lazily: with splitting each lazy import is a chunk under dist/chunks/, so
    // `vmdesk ps` or `--version` does not compile ssh2 and the XML parser (measured: 1.8 MB in one file cost
    // `ps` ~20 ms more than the unbundled modules, while `ls`/`vnc` gained ~55 ms).
    build({ ...common, entryPoints: { vmdesk: join(root, 'src', 'cli', 'main.ts') }, splitting: SPLIT_CLI, chunkNames: 'chunks/[name]-[hash]' }),
  ]);
} catch (err) {
  if (!Array.isArray(err?.errors)) console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
