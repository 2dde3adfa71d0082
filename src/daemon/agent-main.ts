/**
 * The agent's own entry point, bundled as dist/agent.mjs: the CLI bundle spawns it directly, so a new agent
 * loads only what the agent runs (no commander, no CLI commands). Unbundled runs (tsx, tests) start the agent
 * as `main.ts __agent` instead; both end up in runAgent. The `__agent` argument is kept as a marker in the
 * process list (`ps`, the benches and the lab find agents by it).
 */
import { runAgent } from './agent.js';
import { ensureRuntimeDir } from './runtime-dir.js';

// The CLI's exit codes (src/cli/exit-codes.ts: AGENT, INTERNAL), written out: daemon/ does not import cli/.
const EXIT_AGENT = 10;
const EXIT_INTERNAL = 1;

const log = (l: string) => process.stdout.write(`${new Date().toISOString()} ${l}\n`);

runAgent({ dir: ensureRuntimeDir(), log }).then(
  (ok) => process.exit(ok ? 0 : EXIT_AGENT),
  (err: unknown) => {
    log(`agent failed: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(EXIT_INTERNAL);
  },
);
