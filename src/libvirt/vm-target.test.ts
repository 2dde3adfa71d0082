import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { assembleInventory } from './inventory.js';
import { parseInventoryOutput } from './inventory-script.js';
import { closeNames, findDomain, guestAddress, vncDisplay, vncTarget } from './vm-target.js';

const dir = new URL('../../fixtures/libvirt/', import.meta.url);
const boundary = readFileSync(new URL('inventory-labuser.boundary', dir), 'utf8').trim();
const inv = assembleInventory(parseInventoryOutput(readFileSync(new URL('inventory-labuser.txt', dir), 'utf8'), boundary));
const byName = (n: string) => findDomain(inv, n, 'kvmhost');

describe('VM targets from a real inventory', () => {
  it('finds VMs by exact name and suggests close names for typos', () => {
    assert.equal(byName('win2016').name, 'win2016');
    assert.throws(
      () => byName('win2061'),
      (e: { code: string; hint: string }) => e.code === 'VM_NOT_FOUND' && e.hint.includes('"win2016"'),
    );
    assert.deepEqual(closeNames('WIN2016', ['win2016', 'win2019', 'rhel8']), ['win2016', 'win2019']);
  });

  it("never takes a VM's UUID or ID for its name, and says whose they are", () => {
    const win2016 = byName('win2016');
    assert.throws(() => byName(win2016.uuid), (e: { code: string; context: Record<string, unknown> }) => e.code === 'VM_NOT_FOUND' && e.context['uuidOf'] === 'win2016');
    assert.throws(() => byName(win2016.uuid.toUpperCase()), (e: { code: string; context: Record<string, unknown> }) => e.code === 'VM_NOT_FOUND' && e.context['uuidOf'] === 'win2016');
    assert.ok(win2016.id !== undefined);
    assert.throws(() => byName(String(win2016.id)), (e: { code: string; context: Record<string, unknown> }) => e.code === 'VM_NOT_FOUND' && e.context['idOf'] === 'win2016');
    // A VM whose name is another's ID or UUID is found by that name.
    const named = (name: string) => ({ ...inv, domains: [...inv.domains, { ...win2016, uuid: inv.domains[1]!.uuid.replace(/.$/, 'f') as typeof win2016.uuid, name, id: 99 }] });
    assert.equal(findDomain(named(String(win2016.id)), String(win2016.id), 'kvmhost').id, 99);
    assert.equal(findDomain(named(win2016.uuid), win2016.uuid, 'kvmhost').id, 99);
  });

  it('reaches a loopback console on its port, and the display number follows', () => {
    const t = vncTarget(byName('win2016'), 'kvmhost');
    assert.equal(t.kind, 'tcp');
    assert.equal(t.kind === 'tcp' && t.host, '127.0.0.1');
    assert.equal(vncDisplay(t), t.kind === 'tcp' ? t.port - 5900 : undefined);
  });

  it('reaches a 0.0.0.0 console through the host loopback', () => {
    const t = vncTarget(byName('win2019'), 'kvmhost');
    assert.deepEqual(t.kind === 'tcp' ? t.host : t, '127.0.0.1');
  });

  it('uses the unix socket of a socket console, hostile name and all', () => {
    assert.equal(vncTarget(byName('debian12'), 'kvmhost').kind, 'unix');
    const hostile = vncTarget(byName(`x'; touch pwned; echo '`), 'kvmhost');
    assert.equal(hostile.kind, 'unix');
    assert.ok(hostile.kind === 'unix' && hostile.path.includes("x'; touch pwned"));
  });

  it('refuses a shut-off VM and one with only SPICE, with distinct codes', () => {
    assert.throws(() => vncTarget(byName('win2012'), 'kvmhost'), { code: 'VM_NOT_RUNNING' });
    assert.throws(() => vncTarget(byName('-rf'), 'kvmhost'), { code: 'VNC_NOT_CONFIGURED' });
  });

  it("finds win2016's address by MAC from the DHCP lease first", () => {
    const a = guestAddress(byName('win2016'), 'kvmhost', ['leases']);
    assert.equal(a.ip, '192.168.122.217');
    assert.equal(a.source, 'lease');
    assert.throws(() => guestAddress(byName('win2012'), 'kvmhost', ['leases']), { code: 'VM_NOT_RUNNING' });
  });
});
