/**
 * VM endpoints followed by libvirt's events (console/vm-endpoints.ts) on the
 * real hypervisor, through the jump host: the agent's `virsh event --all
 * --loop` stream is live (`vmdesk ps --json`), and a VM restarted onto another
 * autoport behind a live `vnc -d` forward, its old port now another VM's, is
 * still the VM the next connection reaches (QEMU's RFB ServerInit name).
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labDown, labUp, type Lab } from './lab.js';
import { stopAll, vmdeskOk } from './cli-contract.js';
import { libvirtDown, libvirtUp, type Hypervisor } from './libvirt/hypervisor.js';
import { pollUntil } from './poll.js';
import { rfbHello } from './rfb.js';

let lab: Lab;
let hv: Hypervisor;
before(async () => {
  lab = await labUp();
  hv = await libvirtUp({ namespace: 'vmd-host' });
}, { timeout: 600_000 });
after(async () => {
  await libvirtDown({ namespace: 'vmd-host' });
  await labDown();
}, { timeout: 120_000 });
afterEach(() => stopAll(lab), { timeout: 30_000 });

interface PsTunnel {
  id: string;
  endpoints?: { mode: 'events' } | { mode: 'lookup'; reason: string };
}

async function nameAt(port: number): Promise<string | undefined> {
  return (await rfbHello(await lab.clientConnect('127.0.0.1', port))).name;
}

/** The VNC port QEMU listens on now, as libvirt says (`vncdisplay` prints `127.0.0.1:N`). */
async function vncPort(vm: string): Promise<number> {
  const r = await hv.virsh(['vncdisplay', '--domain', vm]);
  assert.equal(r.code, 0, r.stderr);
  return 5900 + Number(/:(\d+)\s*$/.exec(r.stdout.trim())![1]);
}

async function endpointsOf(id: string): Promise<PsTunnel['endpoints']> {
  const tunnels = JSON.parse((await vmdeskOk(lab, ['ps', '--json'])).stdout) as PsTunnel[];
  return tunnels.find((t) => t.id === id)?.endpoints;
}

describe('VM endpoints followed by libvirt events', () => {
  test('a VM restarted onto another autoport behind a live forward: the next connection reaches it, not the port\'s new owner', { timeout: 300_000 }, async () => {
    const r = await vmdeskOk(lab, ['vnc', '-d', '--json', 'kvmhost/win2019']);
    const info = JSON.parse(r.stdout) as { id: string; forwards: { localPort: number }[] };
    const port = info.forwards[0]!.localPort;
    await pollUntil(async () => (await endpointsOf(info.id))?.mode === 'events', { timeoutMs: 30_000, what: 'ps to say the endpoints are live (events)' });
    const table = (await vmdeskOk(lab, ['ps'])).stdout;
    assert.match(table, new RegExp(`tunnel ${info.id}: endpoints live \\(events\\)`));
    // Twice: the second connection is served from the followed endpoint.
    assert.equal(await nameAt(port), 'QEMU (win2019)');
    assert.equal(await nameAt(port), 'QEMU (win2019)');
    const oldPort = await vncPort('win2019');
    assert.equal((await hv.virsh(['destroy', '--domain', 'win2019'])).code, 0);
    assert.equal((await hv.virsh(['start', '--domain', 'win2012'])).code, 0);
    try {
      assert.equal(await vncPort('win2012'), oldPort, "win2012 now owns win2019's old console port");
      assert.equal((await hv.virsh(['start', '--domain', 'win2019'])).code, 0);
      assert.notEqual(await vncPort('win2019'), oldPort);
      assert.equal(await nameAt(port), 'QEMU (win2019)');
      assert.equal(await nameAt(port), 'QEMU (win2019)');
      assert.deepEqual(await endpointsOf(info.id), { mode: 'events' });
    } finally {
      await hv.virsh(['destroy', '--domain', 'win2012']);
    }
  });
});
