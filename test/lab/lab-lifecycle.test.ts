/**
 * The harness's own promises: labUp is idempotent, labDown leaves nothing
 * running, and a run killed midway (SIGKILL, no cleanup) is cleaned up by the
 * next labUp.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKOUT, STATE_DIR, labDown, labUp } from './lab.js';
import { killGroup, spawnDetached } from './exec.js';
import { NAMESPACES, listLabNamespaces, pidsIn } from './netns.js';
import { processName } from './processes.js';
import { pollUntil } from './poll.js';

after(() => labDown(), { timeout: 60_000 });

/** Processes anywhere on the machine whose command line mentions the lab's state dir (sshd -f, relay, services). */
async function labProcesses(): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(STATE_DIR)) found.push(`${entry}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  return found;
}

async function sshdCount(ns: string): Promise<number> {
  let n = 0;
  for (const pid of await pidsIn(ns)) if ((await processName(pid))?.startsWith('sshd')) n++;
  return n;
}

describe('lab lifecycle', () => {
  test('labUp twice, then labDown twice, leaves nothing running', { timeout: 120_000 }, async () => {
    await labUp();
    const lab = await labUp();
    assert.deepEqual((await listLabNamespaces()).sort(), Object.values(NAMESPACES).sort());
    assert.equal(await sshdCount(NAMESPACES.jump), 1);
    assert.equal(await sshdCount(NAMESPACES.host), 1);
    assert.equal((await lab.ssh(['-o', 'BatchMode=yes', 'kvmhost', 'true'])).code, 0);
    await labDown();
    await labDown();
    assert.deepEqual(await listLabNamespaces(), []);
    assert.deepEqual(await labProcesses(), []);
  });

  test('a run killed midway is cleaned up by the next labUp', { timeout: 120_000 }, async () => {
    const crashed = spawnDetached(['node', '--import', 'tsx', join(CHECKOUT, 'test/lab/fixtures/crash-midway.ts')], { cwd: CHECKOUT, stdout: 'pipe', stderr: 'pipe' });
    let out = '';
    crashed.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    crashed.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    await pollUntil(() => out.includes('ready'), { timeoutMs: 60_000, what: `the crash fixture to bring the lab up: ${out}` });
    killGroup(crashed.pid, 'SIGKILL');
    // What the crash left: both servers with a live session each, the ssh client, the helpers.
    assert.ok((await sshdCount(NAMESPACES.jump)) > 1, 'the jump host should still serve the orphaned session');
    assert.ok((await pidsIn(NAMESPACES.client)).length > 0);

    const lab = await labUp();
    assert.equal(await sshdCount(NAMESPACES.jump), 1, 'only the fresh listener remains on the jump host');
    assert.equal(await sshdCount(NAMESPACES.host), 1, 'only the fresh listener remains on the KVM host');
    assert.equal((await lab.ssh(['-o', 'BatchMode=yes', 'kvmhost', 'true'])).code, 0);
    await labDown();
    assert.deepEqual(await listLabNamespaces(), []);
    assert.deepEqual(await labProcesses(), []);
  });
});
