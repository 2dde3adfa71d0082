import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { asDomainUuid } from '../libvirt/domain-list.js';
import { parseDomainXml } from '../libvirt/domain-xml.js';
import type { InventoryDomain } from '../libvirt/inventory.js';
import { consoleAddress, vmView } from './vm-view.js';

function domain(fixture: string, over: Partial<InventoryDomain> = {}): InventoryDomain {
  const info = parseDomainXml(readFileSync(new URL(`../../fixtures/libvirt/${fixture}`, import.meta.url), 'utf8'));
  return { uuid: asDomainUuid(info.uuid), name: info.name, state: 'running', graphics: info.graphics, interfaces: info.interfaces, arePasswordsKnown: true, addresses: [], ...over };
}

test('a loopback console is usable and not exposed; 0.0.0.0 is flagged', () => {
  const lo = vmView(domain('dumpxml-win2016-loopback.xml'), 'kvmhost');
  assert.equal(lo.consoles[0]!.isExposed, false);
  assert.equal(lo.consoles[0]!.isUsable, true);
  assert.match(lo.consoles[0]!.address, /^127\.0\.0\.1:\d+$/);
  const open = vmView(domain('dumpxml-win2019-exposed.xml'), 'kvmhost');
  assert.equal(open.consoles[0]!.isExposed, true);
  assert.match(open.consoles[0]!.address, /^0\.0\.0\.0:/);
});

test('unix-socket consoles print as unix:PATH; a shut-off VM is not usable and its command starts it', () => {
  const sock = domain('dumpxml-debian12-socket.xml');
  assert.match(consoleAddress(sock.graphics[0]!), /^unix:\//);
  const off = vmView(domain('dumpxml-win2012-shutoff.xml', { state: 'shut off' }), 'kvmhost');
  assert.equal(off.consoles[0]!.isUsable, false);
  assert.match(off.commands.vnc, /^vmdesk vnc --start kvmhost\/win2012$/);
});

test('a password is yes/no with --security-info and unknown (null) without', () => {
  assert.equal(vmView(domain('dumpxml-rhel8-passwd-security-info.xml'), 'h').consoles[0]!.hasPassword, true);
  assert.equal(vmView(domain('dumpxml-rhel8-passwd.xml', { arePasswordsKnown: false }), 'h').consoles[0]!.hasPassword, null);
});

test('hostile names are shell-quoted in the copied commands', () => {
  const d = domain('dumpxml-win2016-loopback.xml', { name: "x'; touch pwned; echo '" });
  const v = vmView(d, 'kvmhost');
  assert.equal(v.commands.vnc, `vmdesk vnc 'kvmhost/x'\\''; touch pwned; echo '\\'''`);
});

test('the IP is the best address, marked pinned only when the reservation matches it', () => {
  const d = domain('dumpxml-win2016-loopback.xml', {
    addresses: [
      { ip: '192.168.122.9', mac: '52:54:00:fc:b9:e6', source: 'neigh' },
      { ip: '192.168.122.217', mac: '52:54:00:fc:b9:e6', source: 'lease' },
    ],
  });
  assert.deepEqual(vmView(d, 'h').ip, { address: '192.168.122.217', source: 'lease' });
  assert.deepEqual(vmView(d, 'h', new Map([['52:54:00:fc:b9:e6', '192.168.122.217']])).ip, { address: '192.168.122.217', source: 'lease', isPinned: true });
  assert.equal(vmView(d, 'h', new Map([['52:54:00:fc:b9:e6', '192.168.122.50']])).ip?.isPinned, undefined);
});
