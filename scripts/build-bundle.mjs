#!/usr/bin/env node
// Bundles the CLI and the agent into one ES module each, dist/vmdesk.mjs (what bin/vmdesk loads) and
// dist/agent.mjs (what the CLI spawns for detached tunnels), with every dependency inlined: Node then reads
// and compiles one file instead of resolving and loading ~150 (the measured start-up costs are in
// docs/performance.md). tsc's dist/**/*.js stays for type checking and for what imports the sources.
// ssh2's native crypto binding and cpu-features stay outside the bundle, loaded from node_modules as before.
// Both bundles get the same build id, so the CLI recognises the agent it started as its own.
import { build } from 'esbuild';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

try {
  await build({
    absWorkingDir: root,
    entryPoints: { vmdesk: join(root, 'src', 'cli', 'main.ts'), agent: join(root, 'src', 'daemon', 'agent-main.ts') },
    outdir: join(root, 'dist'),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // One file per process: a chunk shared by the CLI and the agent would be one more file to resolve and read.
    splitting: false,
    // Optional native helpers of ssh2 and ws: loaded from node_modules when installed, skipped when not.
    external: ['cpu-features', 'bufferutil', 'utf-8-validate'],
    plugins: [nativeBinding, bundledSsh2Constants],
    define: { __VMDESK_BUILD_ID__: JSON.stringify(buildId), __VMDESK_VERSION__: JSON.stringify(version) },
    banner: { js: banner },
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'error',
  });
} catch (err) {
  if (!Array.isArray(err?.errors)) console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
