/**
 * The CLI contract the lab tests hold vmdesk to, written down here on
 * purpose rather than imported from src/: if the code's table changes,
 * these tests must notice.
 */
import assert from 'node:assert/strict';
import type { Lab, RunResult } from './lab.js';
import { pollUntil } from './poll.js';

/** Exit statuses scripts can rely on (docs/errors.md). */
export const EXIT = {
  OK: 0,
  USAGE: 2,
  PORT_IN_USE: 3,
  HOST_KEY_UNKNOWN: 4,
  HOST_KEY_CHANGED: 5,
  AUTH_FAILED: 6,
  HOP_UNREACHABLE: 7,
  CHANNEL_REFUSED: 8,
  NOT_FOUND: 9,
  VM_NOT_FOUND: 12,
  VM_NOT_RUNNING: 17,
  HOST_KEY_REVOKED: 26,
} as const;

export type HopStateJson = 'up' | 'connecting' | 'down';

export interface HopJson {
  label: string;
  state: HopStateJson;
  since: number | string;
  error?: { code: string; message: string };
}

export interface ForwardJson {
  bindAddress: string;
  localPort: number;
  target: unknown;
  active: number;
  total: number;
  failed: number;
  bytesIn: number;
  bytesOut: number;
}

export interface TunnelJson {
  id: string;
  dest: string;
  state: string;
  hops: HopJson[];
  forwards: ForwardJson[];
}

export interface JsonError {
  error: { code: string; message: string; context: Record<string, unknown> };
}

/** Formats a run for assertion messages: whoever reads a failure sees what vmdesk said. */
export function describeRun(r: RunResult): string {
  return `exit ${r.code}${r.timedOut ? ' (timed out)' : ''}${r.signal ? ` signal ${r.signal}` : ''}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

export function assertExit(r: RunResult, code: number): void {
  assert.equal(r.code, code, `expected exit ${code}, got ${describeRun(r)}`);
}

/** Runs vmdesk and asserts it exits 0. */
export async function vmdeskOk(lab: Lab, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  const r = await lab.vmdesk(args, { timeoutMs });
  assertExit(r, EXIT.OK);
  return r;
}

function isTimestamp(v: unknown): boolean {
  return (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && !Number.isNaN(Date.parse(v)));
}

/** Parses `vmdesk ps --json` output and checks every tunnel has the documented shape. */
export function parseTunnels(stdout: string): TunnelJson[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    assert.fail(`vmdesk ps --json did not print JSON: ${JSON.stringify(stdout)}`);
  }
  assert.ok(Array.isArray(parsed), `ps --json must print an array, got ${stdout}`);
  for (const t of parsed as TunnelJson[]) {
    const where = `tunnel ${JSON.stringify(t)}`;
    assert.equal(typeof t.id, 'string', where);
    assert.equal(typeof t.dest, 'string', where);
    assert.equal(typeof t.state, 'string', where);
    assert.ok(Array.isArray(t.hops) && t.hops.length > 0, where);
    for (const h of t.hops) {
      assert.equal(typeof h.label, 'string', where);
      assert.ok(['up', 'connecting', 'down'].includes(h.state), `hop state ${h.state} in ${where}`);
      assert.ok(isTimestamp(h.since), `hop since in ${where}`);
      if (h.error !== undefined && h.error !== null) {
        assert.equal(typeof h.error.code, 'string', where);
        assert.equal(typeof h.error.message, 'string', where);
      }
    }
    assert.ok(Array.isArray(t.forwards), where);
    for (const f of t.forwards) {
      assert.equal(typeof f.bindAddress, 'string', where);
      assert.ok(Number.isInteger(f.localPort) && f.localPort > 0, where);
      assert.ok(f.target !== undefined && f.target !== null, where);
      for (const k of ['active', 'total', 'failed', 'bytesIn', 'bytesOut'] as const) {
        assert.ok(Number.isInteger(f[k]) && f[k] >= 0, `${k} in ${where}`);
      }
    }
  }
  return parsed as TunnelJson[];
}

export async function psJson(lab: Lab): Promise<TunnelJson[]> {
  const r = await lab.vmdesk(['ps', '--json'], { timeoutMs: 20_000 });
  assertExit(r, EXIT.OK);
  return parseTunnels(r.stdout);
}

/** The tunnel holding a forward on local `port`. */
export function tunnelWithPort(tunnels: readonly TunnelJson[], port: number): { tunnel: TunnelJson; forward: ForwardJson } | undefined {
  for (const tunnel of tunnels) {
    const forward = tunnel.forwards.find((f) => f.localPort === port);
    if (forward) return { tunnel, forward };
  }
  return undefined;
}

/** Polls `ps --json` until `pred` holds for the forward on local `port`; returns that forward. */
export async function waitForward(lab: Lab, port: number, pred: (f: ForwardJson, t: TunnelJson) => boolean, what: string, timeoutMs = 10_000): Promise<{ tunnel: TunnelJson; forward: ForwardJson }> {
  let last: unknown;
  try {
    return await pollUntil(
      async () => {
        const found = tunnelWithPort(await psJson(lab), port);
        last = found;
        return found && pred(found.forward, found.tunnel) ? found : undefined;
      },
      { timeoutMs, intervalMs: 200, what },
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; last seen: ${JSON.stringify(last)}`, { cause: e });
  }
}

/** Parses a `--json` failure: exactly one JSON object on stdout. */
export function parseJsonError(r: RunResult): JsonError {
  const text = r.stdout.trim();
  assert.ok(text.length > 0 && !text.includes('\n'), `--json failure must print one line of JSON on stdout; ${describeRun(r)}`);
  let parsed: JsonError;
  try {
    parsed = JSON.parse(text) as JsonError;
  } catch {
    assert.fail(`--json failure printed non-JSON on stdout; ${describeRun(r)}`);
  }
  assert.equal(typeof parsed.error, 'object', describeRun(r));
  assert.equal(typeof parsed.error.code, 'string', describeRun(r));
  assert.equal(typeof parsed.error.message, 'string', describeRun(r));
  assert.ok(parsed.error.context !== null && typeof parsed.error.context === 'object', describeRun(r));
  return parsed;
}

/** Stops every tunnel; used between tests so each starts from none. */
export async function stopAll(lab: Lab): Promise<void> {
  await lab.vmdesk(['stop', '--all'], { timeoutMs: 20_000 });
}
