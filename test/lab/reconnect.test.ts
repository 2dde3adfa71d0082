/**
 * A background tunnel outlives its SSH connection: when the jump host's sshd
 * dies (listener and sessions, so the connection really drops), `ps` shows
 * the hop down with an error, the local listener keeps accepting, and once
 * sshd is back the forward works again without the user doing anything.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { labDown, labUp, type Lab } from './lab.js';
import { EXIT, assertExit, psJson, stopAll, tunnelWithPort, vmdeskOk, type HopJson } from './cli-contract.js';
import { echoAt, isAccepting } from './probes.js';
import { pollUntil } from './poll.js';

let lab: Lab;
before(async () => {
  lab = await labUp();
}, { timeout: 120_000 });
after(() => labDown(), { timeout: 60_000 });
afterEach(async () => {
  await lab.startSshd('jump').catch(() => {});
  await stopAll(lab);
}, { timeout: 30_000 });

async function jumpHop(port: number): Promise<HopJson | undefined> {
  return tunnelWithPort(await psJson(lab), port)?.tunnel.hops.find((h) => h.label === 'jump');
}

describe('reconnect', () => {
  test('the tunnel comes back after the jump host restarts', { timeout: 90_000 }, async () => {
    await vmdeskOk(lab, ['forward', '-d', 'kvmhost', '7500:127.0.0.1:7000']);
    assert.equal(await echoAt(lab, 7500, 'before'), 'before');

    const outageStart = Date.now();
    await lab.stopSshd('jump');
    const down = await pollUntil(
      async () => {
        const hop = await jumpHop(7500);
        return hop && hop.state !== 'up' && hop.error ? hop : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 250, what: 'ps --json to show the jump hop not up, with an error' },
    );
    assert.equal(typeof down.error?.code, 'string');
    assert.ok((down.error?.message ?? '').length > 0);

    assert.equal(await isAccepting(lab, 7500), true, 'the local listener must stay up during the outage');

    await sleep(Math.max(0, outageStart + 5000 - Date.now()));
    await lab.startSshd('jump');
    const restartedAt = Date.now();
    await pollUntil(async () => (await echoAt(lab, 7500, 'after', 2000).catch(() => '')) === 'after', {
      timeoutMs: 5000,
      intervalMs: 200,
      what: 'an echo through 7500 after sshd on the jump host restarted',
    });
    console.log(`# echo through 7500 works again ${Date.now() - restartedAt} ms after the jump host's sshd restarted`);
    const hop = await jumpHop(7500);
    assert.equal(hop?.state, 'up', JSON.stringify(hop));
  });

  test('a jump host that is down from the start exits 7', { timeout: 60_000 }, async () => {
    await lab.stopSshd('jump');
    const r = await lab.vmdesk(['forward', '-d', 'kvmhost', '7501:127.0.0.1:7000'], { timeoutMs: 45_000 });
    assertExit(r, EXIT.HOP_UNREACHABLE);
    assert.match(r.stderr, /\bjump\b|10\.1\.1\.1/, 'stderr names the unreachable hop');
    assert.equal(await isAccepting(lab, 7501), false);
  });
});
