/**
 * The agent's `warm` request (sent by `vnc -d`/`rdp -d`/`open` while the CLI
 * looks the VM up): the agent connects to the host at once, and the `open`
 * that follows with the same hops uses that chain instead of connecting
 * again; a warm chain that fails (it never prompts nor accepts new host
 * keys) does not make the `open` fail.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from '../../src/daemon/agent-client.js';
import { runAgent, type OpenParams } from '../../src/daemon/agent.js';
import type { TunnelInfo } from '../../src/daemon/tunnel.js';
import { isVmdeskError } from '../../src/errors.js';
import { planHops } from '../../src/ssh/hop-plan.js';
import { freePort } from './free-port.js';
import { echoRoundTrip, knownHostsEntry, sha256, startSite, type Site } from './harness.js';

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('agent warm chains', () => {
  let site: Site;
  let dir: string;
  let agentDone: Promise<boolean>;
  let client: AgentClient;

  before(async () => {
    site = await startSite();
    dir = mkdtempSync(join(tmpdir(), 'vmdesk-warm-'));
    agentDone = runAgent({ dir, idleExitMs: 60_000 });
    for (let i = 0; i < 100 && !client; i++) {
      const c = await AgentClient.connect({ start: false, env: { ...process.env, VMDESK_RUNTIME_DIR: dir } });
      if (c) client = c;
      else await sleep(20);
    }
    assert.ok(client, 'the agent answers');
  });

  after(async () => {
    await client.request('shutdown', {}).catch(() => {});
    client.close();
    await agentDone;
    await site.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const openEcho = async (acceptNewHostKey: boolean): Promise<TunnelInfo> => {
    const hops = await planHops('target', { configFile: site.configFile });
    const localPort = await freePort();
    const params: OpenParams = {
      dest: 'target',
      hops,
      specs: [{ bindAddress: '127.0.0.1', localPort, target: { kind: 'tcp', host: '127.0.0.1', port: site.echoPort }, source: `${localPort}` }],
      acceptNewHostKey,
    };
    return (await client.request('open', params)) as TunnelInfo;
  };

  it('an open after a warm uses the warm chain: one connection, no second authentication', async () => {
    assert.deepEqual(await client.request('warm', { dest: 'target', configFile: site.configFile }), { ok: true });
    await until('the warm chain to reach the target', () => site.target.connectionCount === 1 && site.target.counters.authAttempts > 0);
    // Let the warm chain finish authenticating before counting.
    await sleep(200);
    const authsBefore = site.target.counters.authAttempts;
    const info = await openEcho(false);
    assert.equal(site.target.connectionCount, 1);
    assert.equal(site.target.counters.authAttempts, authsBefore);
    const payload = Buffer.from('warm chain');
    assert.equal(await echoRoundTrip(info.forwards[0]!.localPort, payload), sha256(payload));
    await client.request('stop', { ids: [info.id] });
    await until('the chain to close', () => site.target.connectionCount === 0);
  });

  it('a warm chain that fails on an unknown host key does not fail the open that joined it (it connects again)', async () => {
    // The target's key is no longer known: the warm chain (never accepting new keys) fails at the second hop.
    writeFileSync(site.knownHosts, `${knownHostsEntry(site.jump.port, site.jump.hostPublicKey)}\n`);
    await client.request('warm', { dest: 'target', configFile: site.configFile });
    let info: TunnelInfo;
    try {
      info = await openEcho(true);
    } catch (err) {
      assert.fail(`open failed${isVmdeskError(err) ? ` with ${err.code}` : ''}: ${(err as Error).message}`);
    }
    const payload = Buffer.from('after a failed warm');
    assert.equal(await echoRoundTrip(info.forwards[0]!.localPort, payload), sha256(payload));
    await client.request('stop', { ids: [info.id] });
  });
});
