import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { assembleInventory } from './inventory.js';
import { parseInventoryOutput } from './inventory-script.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');
const load = (name: string) => parseInventoryOutput(fixture(`${name}.txt`), fixture(`${name}.boundary`).trim());

describe('assembleInventory on the lab, as labuser saw it', () => {
  const inv = assembleInventory(load('inventory-labuser'));
  const byName = (name: string) => {
    const d = inv.domains.find((x) => x.name === name);
    assert.ok(d, `no domain ${JSON.stringify(name)}`);
    return d;
  };

  it('lists every domain with its state, hostile names included', () => {
    assert.equal(inv.isComplete, true);
    assert.match(inv.version ?? '', /libvirt 9\.0\.0/);
    const states = Object.fromEntries(inv.domains.map((d) => [d.name, d.state]));
    assert.deepEqual(states, {
      win2016: 'running',
      win2019: 'running',
      rhel8: 'running',
      debian12: 'running',
      [`x'; touch pwned; echo '`]: 'running',
      '$(touch pwned2)': 'running',
      '-rf': 'shut off',
      win2012: 'shut off',
    });
  });

  it("finds win2016's address by MAC from the lease and from the neighbour table", () => {
    assert.deepEqual(byName('win2016').addresses, [
      { ip: '192.168.122.217', mac: '52:54:00:fc:b9:e6', source: 'lease', via: 'default' },
      { ip: '192.168.122.217', mac: '52:54:00:fc:b9:e6', source: 'neigh', via: 'virbr0' },
    ]);
    assert.deepEqual(byName('win2012').addresses, []);
  });

  it('knows the consoles: loopback, exposed, password, sockets', () => {
    assert.deepEqual(byName('win2016').graphics[0]?.listens, [{ type: 'address', address: '127.0.0.1' }]);
    assert.equal(byName('win2019').graphics[0]?.listens[0]?.address, '0.0.0.0');
    assert.equal(byName('rhel8').graphics[0]?.hasPassword, true);
    assert.equal(byName('rhel8').arePasswordsKnown, true);
    assert.equal(byName('win2016').graphics[0]?.hasPassword, false);
    assert.match(byName('debian12').graphics[0]?.socket ?? '', /^\/run\/vmd-libvirt\/vnc\/.*\.sock$/);
    assert.equal(byName(`x'; touch pwned; echo '`).graphics[0]?.listens[0]?.type, 'socket');
    assert.equal(byName('-rf').graphics[0]?.type, 'spice');
  });

  it('describes the NAT network and its leases', () => {
    assert.equal(inv.networks.length, 1);
    const net = inv.networks[0]!;
    assert.equal(net.name, 'default');
    assert.equal(net.bridge, 'virbr0');
    assert.equal(net.forwardMode, 'nat');
    assert.deepEqual(net.addresses, [
      {
        address: '192.168.122.1',
        family: 'ipv4',
        prefix: 24,
        dhcp: { ranges: [{ start: '192.168.122.2', end: '192.168.122.254' }], hosts: [{ mac: '52:54:00:fc:b9:e6', name: 'win2016', ip: '192.168.122.217' }] },
      },
    ]);
    assert.equal(net.leases.length, 6);
  });
});

describe('assembleInventory when libvirt cannot be used', () => {
  it('LIBVIRT_PERMISSION_DENIED for a user outside the libvirt group', () => {
    assert.throws(() => assembleInventory(load('inventory-nobody')), (e: unknown) => isVmdeskError(e, 'LIBVIRT_PERMISSION_DENIED'));
  });

  it('LIBVIRT_UNAVAILABLE when libvirtd is not running', () => {
    assert.throws(() => assembleInventory(load('inventory-libvirtd-down')), (e: unknown) => isVmdeskError(e, 'LIBVIRT_UNAVAILABLE'));
  });
});

describe('assembleInventory on batched output', () => {
  const U = '11111111-2222-3333-4444-555555555555';
  const b = 'vmdesk-0123456789abcdef0123456789abcdef';
  const section = (kind: string, key: string, stdout: string, code: number, stderr = ''): string => `@@${b} begin ${kind} ${key}\n${stdout}\n@@${b} end ${code}\n${stderr ? `${stderr}\n` : ''}`;
  const text = (...sections: string[]): string => `\n${sections.join('')}@@${b} done\n`;

  it('takes a plain dumpxml without a failed secure one as "passwords unknown", and ignores the batch section', () => {
    const inv = assembleInventory(
      parseInventoryOutput(
        text(
          section('list', 'all', `${U}\n`, 0),
          section('list', 'shutoff', `${U}\n`, 0),
          section('dumpxml-public', U, `<domain type='kvm'><name>ro</name><uuid>${U}</uuid><devices><graphics type='vnc' port='-1'/></devices></domain>\n`, 0),
          section('batch', '9', '', 0, 'error: operation forbidden: read only access prevents virDomainGetXMLDesc'),
        ),
        b,
      ),
    );
    assert.equal(inv.domains.length, 1);
    assert.equal(inv.domains[0]!.name, 'ro');
    assert.equal(inv.domains[0]!.state, 'shut off');
    assert.equal(inv.domains[0]!.arePasswordsKnown, false);
    assert.equal(inv.domains[0]!.error, undefined);
  });
});
