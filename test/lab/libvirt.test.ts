/**
 * The real hypervisor: libvirtd + QEMU guests in the KVM host's namespace,
 * inventoried by vmdesk's one-round-trip script as the lab's SSH user.
 * Run alone as root: node --import tsx --test test/lab/libvirt.test.ts
 *
 * Uses the lab's `vmd-host` namespace, creating a bare one when the lab is not
 * up (VMDESK_LAB_HOST_NS names another, e.g. while a lab run owns vmd-host).
 */
import assert from 'node:assert/strict';
import { chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assembleInventory, type Inventory } from '../../src/libvirt/inventory.js';
import { buildInventoryScript, newBoundary, parseInventoryOutput } from '../../src/libvirt/inventory-script.js';
import { SERVER_USER, ensureUser } from './accounts.js';
import { runProcess } from './exec.js';
import { HOSTILE_NAMES, LAB_DOMAINS, VNC_PASSWORD, WIN2016_IP, WIN2016_MAC } from './libvirt/domains.js';
import { libvirtDown, libvirtUp, namespaceExists, type Hypervisor } from './libvirt/hypervisor.js';
import { fileExists } from './files.js';

const NS = process.env.VMDESK_LAB_HOST_NS ?? 'vmd-host';
const SERVER_HOME = '/home/labuser';


describe('libvirt lab: real libvirtd and QEMU guests in the host namespace', { timeout: 600_000 }, () => {
  let hv: Hypervisor;
  let createdNamespace = false;

  before(async () => {
    createdNamespace = !(await namespaceExists(NS));
    const acct = await ensureUser(SERVER_USER, SERVER_HOME);
    await mkdir(acct.home, { recursive: true, mode: 0o755 });
    await chown(acct.home, acct.uid, acct.gid);
    hv = await libvirtUp({ namespace: NS, createNamespace: createdNamespace });
    console.log(`libvirtUp: ${JSON.stringify(hv.timings)}`);
  });

  after(async () => {
    await libvirtDown({ namespace: NS });
    if (createdNamespace) await runProcess(['ip', 'netns', 'delete', NS]);
  });

  const inventoryAs = async (user: string | undefined): Promise<{ inv: Inventory; text: string }> => {
    const boundary = newBoundary();
    const r = await hv.run(['sh', '-c', buildInventoryScript(hv.uri, boundary)], { ...(user ? { user } : {}), cwd: user ? SERVER_HOME : '/tmp' });
    assert.equal(r.code, 0, r.stderr);
    return { inv: assembleInventory(parseInventoryOutput(r.stdout, boundary)), text: r.stdout };
  };

  it('the lab SSH user is in group libvirt and may use virsh', async () => {
    assert.equal(hv.users.sshUser, SERVER_USER);
    const r = await hv.virsh(['list', '--all', '--uuid'], { user: SERVER_USER });
    assert.equal(r.code, 0, r.stderr);
  });

  it('inventory as labuser: every domain with the right state and console', async () => {
    const { inv, text } = await inventoryAs(SERVER_USER);
    assert.equal(inv.isComplete, true);
    assert.doesNotMatch(text, new RegExp(VNC_PASSWORD));
    for (const d of LAB_DOMAINS) {
      const found = inv.domains.find((x) => x.uuid === d.uuid);
      assert.ok(found, `missing ${JSON.stringify(d.name)}`);
      assert.equal(found.name, d.name);
      assert.equal(found.state, d.isRunning ? 'running' : 'shut off', d.name);
      assert.equal(found.interfaces[0]?.mac, d.mac);
      const g = found.graphics[0];
      assert.ok(g, `${d.name} has no graphics`);
      switch (d.graphics) {
        case 'loopback':
          assert.equal(g.type, 'vnc');
          assert.equal(g.autoport, true);
          if (d.isRunning) assert.deepEqual(g.listens, [{ type: 'address', address: '127.0.0.1' }]);
          break;
        case 'exposed':
          assert.deepEqual(g.listens, [{ type: 'address', address: '0.0.0.0' }]);
          break;
        case 'password':
          assert.equal(g.hasPassword, true);
          break;
        case 'socket-attr':
        case 'socket-listen':
          assert.ok(g.socket, `${d.name} has no socket`);
          assert.equal(g.listens[0]?.type, 'socket');
          break;
        case 'network-listen':
          assert.deepEqual(g.listens, [{ type: 'network', address: '192.168.122.1', network: 'default' }]);
          break;
        case 'spice':
          assert.equal(g.type, 'spice');
          break;
      }
      if (d.graphics !== 'password') assert.equal(g.hasPassword, false, d.name);
    }
  });

  it("finds win2016's IP by MAC via the DHCP lease and via ip neigh", async () => {
    const { inv } = await inventoryAs(SERVER_USER);
    const win = inv.domains.find((d) => d.name === 'win2016');
    assert.ok(win);
    const by = (source: string) => win.addresses.filter((a) => a.source === source).map((a) => `${a.mac} ${a.ip}`);
    assert.deepEqual(by('lease'), [`${WIN2016_MAC} ${WIN2016_IP}`]);
    assert.deepEqual(by('neigh'), [`${WIN2016_MAC} ${WIN2016_IP}`]);
    assert.equal(hv.addresses.get('win2016'), WIN2016_IP);
  });

  it('inventory as root sees the same domains', async () => {
    const { inv } = await inventoryAs(undefined);
    assert.deepEqual(inv.domains.map((d) => d.uuid).sort(), LAB_DOMAINS.map((d) => d.uuid).sort());
  });

  it('win2016 answers on 3389 from the host namespace, and its console names it', async () => {
    assert.equal((await hv.tcpRead(WIN2016_IP, 3389)).trim(), 'RDP-LAB win2016');
    assert.match(await hv.serialLog('win2016'), new RegExp(`VMDESK-LAB GUEST win2016 IP ${WIN2016_IP.replace(/\./g, '\\.')}`));
  });

  it('hostile names are listed, reachable, and ran nothing', async () => {
    const { inv } = await inventoryAs(SERVER_USER);
    for (const name of HOSTILE_NAMES) {
      const d = inv.domains.find((x) => x.name === name);
      assert.ok(d, `missing ${JSON.stringify(name)}`);
      const ip = d.addresses.find((a) => a.source === 'lease')?.ip;
      assert.ok(ip, `${name} has no lease`);
      assert.equal((await hv.tcpRead(ip, 3389)).trim(), `RDP-LAB ${name}`);
    }
    for (const dir of [process.cwd(), '/', '/tmp', SERVER_HOME, '/root']) {
      for (const f of ['pwned', 'pwned2']) assert.equal(await fileExists(join(dir, f)), false, `${join(dir, f)} exists`);
    }
  });

  it('virsh as a user outside group libvirt is refused', async () => {
    const r = await hv.run(['runuser', '-u', 'nobody', '--', 'virsh', '-c', hv.uri, 'list']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Permission denied/);
  });
});
