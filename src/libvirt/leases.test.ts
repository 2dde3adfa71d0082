import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseArpN, parseDhcpLeases, parseDomifaddr, parseIpNeigh } from './leases.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

describe('parseDhcpLeases (virsh net-dhcp-leases default)', () => {
  const leases = parseDhcpLeases(fixture('net-dhcp-leases-default.txt'));

  it('reads every lease and skips the header and rule', () => {
    assert.equal(leases.length, 6);
  });

  it("finds win2016 by MAC at the seed's address", () => {
    assert.deepEqual(
      leases.find((l) => l.mac === '52:54:00:fc:b9:e6'),
      { expiry: leases.find((l) => l.mac === '52:54:00:fc:b9:e6')!.expiry, mac: '52:54:00:fc:b9:e6', protocol: 'ipv4', ipAddress: '192.168.122.217', prefix: 24, hostname: 'win2016', clientId: '01:52:54:00:fc:b9:e6' },
    );
    assert.match(leases[0]!.expiry, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  });

  it('leaves out a hostname printed as -', () => {
    const hostile = leases.find((l) => l.mac === '52:54:00:6c:ab:a1')!;
    assert.equal(hostile.hostname, undefined);
    assert.equal(hostile.clientId, '01:52:54:00:6c:ab:a1');
  });

  it('reads an IPv6 lease with a DUID', () => {
    const [l] = parseDhcpLeases(' 2026-11-26 13:53:51   52:54:00:fc:b9:e6   ipv6       fd00:122::5b/64   win2016    00:04:d1:b6:2a:93:11:8b\n');
    assert.deepEqual(l, { expiry: '2026-11-26 13:53:51', mac: '52:54:00:fc:b9:e6', protocol: 'ipv6', ipAddress: 'fd00:122::5b', prefix: 64, hostname: 'win2016', clientId: '00:04:d1:b6:2a:93:11:8b' });
  });

  it('returns nothing for an empty table or an error text', () => {
    assert.deepEqual(parseDhcpLeases(' Expiry Time   MAC address   Protocol   IP address   Hostname   Client ID or DUID\n-----\n\n'), []);
    assert.deepEqual(parseDhcpLeases(fixture('error-network-not-found.stderr')), []);
  });
});

describe('parseDomifaddr', () => {
  it('reads virsh domifaddr --source lease', () => {
    assert.deepEqual(parseDomifaddr(fixture('domifaddr-win2016-lease.txt')), [
      { name: 'vnet0', mac: '52:54:00:fc:b9:e6', protocol: 'ipv4', ipAddress: '192.168.122.217', prefix: 24 },
    ]);
  });

  it('continues an interface on `-` rows and keeps agent names with spaces', () => {
    const text = [
      ' Name       MAC address          Protocol     Address',
      '-------------------------------------------------------------------------------',
      ' lo         00:00:00:00:00:00    ipv4         127.0.0.1/8',
      ' Ethernet 2 52:54:00:fc:b9:e6    ipv4         192.168.122.217/24',
      ' -          -                    ipv6         fe80::5054:ff:fefc:b9e6/64',
      '',
    ].join('\n');
    assert.deepEqual(parseDomifaddr(text), [
      { name: 'lo', mac: '00:00:00:00:00:00', protocol: 'ipv4', ipAddress: '127.0.0.1', prefix: 8 },
      { name: 'Ethernet 2', mac: '52:54:00:fc:b9:e6', protocol: 'ipv4', ipAddress: '192.168.122.217', prefix: 24 },
      { name: 'Ethernet 2', mac: '52:54:00:fc:b9:e6', protocol: 'ipv6', ipAddress: 'fe80::5054:ff:fefc:b9e6', prefix: 64 },
    ]);
  });

  it('returns nothing for the empty output of a failed --source arp', () => {
    assert.deepEqual(parseDomifaddr(fixture('domifaddr-win2016-arp.txt')), []);
  });
});

describe('neighbour tables', () => {
  const win2016 = { ip: '192.168.122.217', dev: 'virbr0', mac: '52:54:00:fc:b9:e6' };

  it('parseIpNeigh reads the host namespace `ip neigh show`', () => {
    const n = parseIpNeigh(fixture('ip-neigh.txt'));
    assert.equal(n.length, 6);
    assert.deepEqual(n.find((x) => x.mac === win2016.mac), { ...win2016, state: 'STALE' });
  });

  it('parseIpNeigh: entries without lladdr, router flags, IPv6, several states', () => {
    const text = [
      '192.168.122.9 dev virbr0 FAILED',
      '192.168.122.10 dev virbr0 INCOMPLETE',
      'fe80::1 dev eth0 lladdr 52:54:00:12:34:56 router STALE',
      '10.0.0.1 dev eth0 lladdr 52:54:00:AB:CD:EF PERMANENT',
      '10.0.0.2 dev eth0 lladdr 52:54:00:ab:cd:01 extern_learn NOARP',
      'garbage line',
      '',
    ].join('\n');
    assert.deepEqual(parseIpNeigh(text), [
      { ip: '192.168.122.9', dev: 'virbr0', state: 'FAILED' },
      { ip: '192.168.122.10', dev: 'virbr0', state: 'INCOMPLETE' },
      { ip: 'fe80::1', dev: 'eth0', mac: '52:54:00:12:34:56', state: 'STALE', isRouter: true },
      { ip: '10.0.0.1', dev: 'eth0', mac: '52:54:00:ab:cd:ef', state: 'PERMANENT' },
      { ip: '10.0.0.2', dev: 'eth0', mac: '52:54:00:ab:cd:01', state: 'NOARP' },
    ]);
  });

  it('parseArpN reads busybox arp -n and /proc/net/arp', () => {
    for (const f of ['arp-n-busybox.txt', 'proc-net-arp.txt']) {
      const n = parseArpN(fixture(f));
      assert.equal(n.length, 6, f);
      assert.deepEqual(n.find((x) => x.mac === win2016.mac), { ...win2016, state: 'REACHABLE' }, f);
    }
  });

  it("parseArpN reads net-tools arp -n, the seed's own line among them", () => {
    const n = parseArpN(fixture('arp-n-net-tools.txt'));
    assert.deepEqual(n.find((x) => x.mac === win2016.mac), { ...win2016, state: 'REACHABLE' });
    const seed = '192.168.122.217          ether   52:54:00:fc:b9:e6   C                     virbr0\n';
    assert.deepEqual(parseArpN(seed), [{ ...win2016, state: 'REACHABLE' }]);
  });

  it('parseArpN: incomplete and permanent entries', () => {
    const netTools = ['192.168.122.5                    (incomplete)                              virbr0', '10.0.0.1                 ether   52:54:00:ab:cd:ef   CM                    eth0'].join('\n');
    assert.deepEqual(parseArpN(netTools), [
      { ip: '192.168.122.5', dev: 'virbr0', state: 'INCOMPLETE' },
      { ip: '10.0.0.1', dev: 'eth0', mac: '52:54:00:ab:cd:ef', state: 'PERMANENT' },
    ]);
    assert.deepEqual(parseArpN('? (192.168.122.5) at <incomplete>  on virbr0\n'), [{ ip: '192.168.122.5', dev: 'virbr0', state: 'INCOMPLETE' }]);
    assert.deepEqual(parseArpN('192.168.122.5    0x1   0x0   00:00:00:00:00:00   *   virbr0\n'), [{ ip: '192.168.122.5', dev: 'virbr0', state: 'INCOMPLETE' }]);
  });
});
