import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isVmdeskError, type ErrorCode } from '../errors.js';
import { isDnsLabel, pinnedIps, planReservation, removalXml } from './dhcp-hosts.js';
import { parseDhcpLeases } from './leases.js';
import { parseNetworkXml } from './network-xml.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

/** The lab's real `virsh net-dumpxml default`, with extra host lines added by hand after its one reservation. */
function defaultNet(extraHosts = '') {
  const xml = fixture('net-dumpxml-default.xml');
  const anchor = "<host mac='52:54:00:fc:b9:e6' name='win2016' ip='192.168.122.217'/>";
  assert.ok(xml.includes(anchor));
  return parseNetworkXml(xml.replace(anchor, `${anchor}${extraHosts}`));
}

const code = (c: ErrorCode) => (e: unknown) => isVmdeskError(e, c);

describe('planReservation on the default network (192.168.122.1/24, range .2-.254)', () => {
  const net = defaultNet("\n      <host mac='52:54:00:6c:ab:19' name='win2019' ip='192.168.122.56'/>\n      <host name='printer' ip='192.168.122.9'/>");

  it('add: a new MAC, inside the range, with the VM name', () => {
    assert.deepEqual(planReservation(net, '52:54:00:6C:AB:08', '192.168.122.39', 'rhel8'), {
      action: 'add',
      hostXml: "<host mac='52:54:00:6c:ab:08' name='rhel8' ip='192.168.122.39'/>",
    });
  });

  it('none: the same MAC already has this address (idempotent)', () => {
    assert.deepEqual(planReservation(net, '52:54:00:fc:b9:e6', '192.168.122.217', 'win2016'), {
      action: 'none',
      hostXml: "<host mac='52:54:00:fc:b9:e6' name='win2016' ip='192.168.122.217'/>",
    });
  });

  it('modify: the MAC has a reservation with another address', () => {
    assert.deepEqual(planReservation(net, '52:54:00:fc:b9:e6', '192.168.122.30', 'win2016'), {
      action: 'modify',
      hostXml: "<host mac='52:54:00:fc:b9:e6' name='win2016' ip='192.168.122.30'/>",
    });
  });

  it('a name that is not one DNS label is left out; so is a name another entry holds', () => {
    assert.equal(planReservation(net, '52:54:00:6c:ab:a1', '192.168.122.192', `x'; touch pwned; echo '`).hostXml, "<host mac='52:54:00:6c:ab:a1' ip='192.168.122.192'/>");
    assert.equal(planReservation(net, '52:54:00:6c:ab:a2', '192.168.122.193', '$(touch pwned2)').hostXml, "<host mac='52:54:00:6c:ab:a2' ip='192.168.122.193'/>");
    assert.equal(planReservation(net, '52:54:00:6c:ab:a3', '192.168.122.194', '-rf').hostXml, "<host mac='52:54:00:6c:ab:a3' ip='192.168.122.194'/>");
    assert.equal(planReservation(net, '52:54:00:6c:ab:a4', '192.168.122.195', 'printer').hostXml, "<host mac='52:54:00:6c:ab:a4' ip='192.168.122.195'/>");
    assert.equal(planReservation(net, '52:54:00:6c:ab:a4', '192.168.122.195').hostXml, "<host mac='52:54:00:6c:ab:a4' ip='192.168.122.195'/>");
  });

  it('DHCP_IP_CONFLICT: reserved for another MAC, or for a name-only entry', () => {
    assert.throws(() => planReservation(net, '52:54:00:6c:ab:08', '192.168.122.56', 'rhel8'), (e: unknown) => isVmdeskError(e, 'DHCP_IP_CONFLICT') && e.context['reservedFor'] === '52:54:00:6c:ab:19');
    assert.throws(() => planReservation(net, '52:54:00:6c:ab:08', '192.168.122.9'), code('DHCP_IP_CONFLICT'));
  });

  it('DHCP_IP_CONFLICT: currently leased to another MAC (when the leases are known)', () => {
    const withLeases = { ...net, leases: parseDhcpLeases(fixture('net-dhcp-leases-default.txt')) };
    assert.throws(() => planReservation(withLeases, '52:54:00:6c:ab:08', '192.168.122.43'), code('DHCP_IP_CONFLICT'));
    assert.equal(planReservation(withLeases, '52:54:00:6c:ab:08', '192.168.122.39').action, 'add');
  });

  it('DHCP_IP_INVALID: outside the subnet, the gateway, network and broadcast addresses, not IPv4', () => {
    for (const ip of ['192.168.123.5', '10.0.0.1', '192.168.122.1', '192.168.122.0', '192.168.122.255', '192.168.122.050', '192.168.122', 'fe80::1', '']) {
      assert.throws(() => planReservation(net, '52:54:00:6c:ab:08', ip), code('DHCP_IP_INVALID'), ip);
    }
  });

  it('outside the dynamic range but inside the subnet is allowed (dnsmasq serves static hosts in the whole subnet)', () => {
    const narrow = parseNetworkXml(fixture('net-dumpxml-default.xml').replace("end='192.168.122.254'", "end='192.168.122.99'"));
    assert.equal(planReservation(narrow, '52:54:00:6c:ab:08', '192.168.122.200').action, 'add');
  });

  it('USAGE for a malformed MAC', () => {
    assert.throws(() => planReservation(net, '52:54:00:6c:ab', '192.168.122.39'), code('USAGE'));
  });
});

describe('planReservation on other network shapes', () => {
  const net = (ips: string) => parseNetworkXml(`<network><name>n</name><uuid>11111111-2222-3333-4444-555555555555</uuid>${ips}</network>`);

  it('uses the <ip> that has DHCP, as net-update does without --parent-index', () => {
    const n = net("<ip address='10.1.0.1' prefix='24'/><ip address='10.2.0.1' prefix='24'><dhcp><range start='10.2.0.100' end='10.2.0.200'/></dhcp></ip>");
    assert.equal(planReservation(n, '52:54:00:00:00:01', '10.2.0.5').action, 'add');
    assert.throws(() => planReservation(n, '52:54:00:00:00:01', '10.1.0.5'), code('DHCP_IP_INVALID'));
    assert.throws(() => planReservation(n, '52:54:00:00:00:01', '10.1.0.1'), code('DHCP_IP_INVALID'));
  });

  it('a class C address without prefix or netmask is a /24, as libvirt assumes', () => {
    const n = net("<ip address='192.168.50.1'><dhcp/></ip>");
    assert.equal(planReservation(n, '52:54:00:00:00:01', '192.168.50.7').action, 'add');
    assert.throws(() => planReservation(n, '52:54:00:00:00:01', '192.168.51.7'), code('DHCP_IP_INVALID'));
  });

  it('DHCP_IP_INVALID on an IPv6-only or address-less network', () => {
    assert.throws(() => planReservation(net("<ip family='ipv6' address='fd00::1' prefix='64'><dhcp><range start='fd00::10' end='fd00::20'/></dhcp></ip>"), '52:54:00:00:00:01', '10.0.0.5'), code('DHCP_IP_INVALID'));
    assert.throws(() => planReservation(net(''), '52:54:00:00:00:01', '10.0.0.5'), code('DHCP_IP_INVALID'));
  });
});

describe('removalXml and pinnedIps', () => {
  const net = defaultNet("\n      <host mac='52:54:00:6c:ab:19' ip='192.168.122.56'/>\n      <host name='printer' ip='192.168.122.9'/>");

  it('removalXml names every attribute of the existing entry, so delete hits exactly it', () => {
    assert.equal(removalXml(net, '52:54:00:FC:B9:E6'), "<host mac='52:54:00:fc:b9:e6' name='win2016' ip='192.168.122.217'/>");
    assert.equal(removalXml(net, '52:54:00:6c:ab:19'), "<host mac='52:54:00:6c:ab:19' ip='192.168.122.56'/>");
    assert.equal(removalXml(net, '52:54:00:6c:ab:08'), undefined);
  });

  it('pinnedIps maps MACs to their reserved addresses', () => {
    assert.deepEqual(
      pinnedIps(net),
      new Map([
        ['52:54:00:fc:b9:e6', '192.168.122.217'],
        ['52:54:00:6c:ab:19', '192.168.122.56'],
      ]),
    );
    assert.deepEqual(pinnedIps(parseNetworkXml(fixture('net-dumpxml-default.xml').replace(/\s*<host [^>]*\/>/, ''))), new Map());
  });

  it('isDnsLabel', () => {
    for (const ok of ['win2016', 'a', 'A-1', 'x'.repeat(63)]) assert.equal(isDnsLabel(ok), true, ok);
    for (const bad of ['', '-rf', 'a-', 'a_b', 'a.b', 'x'.repeat(64), "x'"]) assert.equal(isDnsLabel(bad), false, bad);
  });
});
