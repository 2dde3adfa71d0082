import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { parseNetworkXml } from './network-xml.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

describe('parseNetworkXml', () => {
  it('the lab default network: NAT, virbr0, 192.168.122.1/24 with its DHCP range and one reservation', () => {
    assert.deepEqual(parseNetworkXml(fixture('net-dumpxml-default.xml')), {
      name: 'default',
      uuid: '766d6400-6c61-4b00-8000-0000000000ff',
      forwardMode: 'nat',
      bridge: 'virbr0',
      addresses: [
        {
          address: '192.168.122.1',
          family: 'ipv4',
          prefix: 24,
          dhcp: { ranges: [{ start: '192.168.122.2', end: '192.168.122.254' }], hosts: [{ mac: '52:54:00:fc:b9:e6', name: 'win2016', ip: '192.168.122.217' }] },
        },
      ],
    });
  });

  it('several hosts, an empty <dhcp/>, an IPv6 dhcp with id hosts, an <ip> without dhcp', () => {
    const xml = `<network>
  <name>lab</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <ip address='10.9.0.1' prefix='16'>
    <dhcp>
      <range start='10.9.1.1' end='10.9.1.200'>
        <lease expiry='1' unit='hours'/>
      </range>
      <range start='10.9.2.1' end='10.9.2.9'/>
      <host mac='52:54:00:AA:00:01' name='a' ip='10.9.0.10'/>
      <host name='only-name' ip='10.9.0.11'/>
      <host mac='52:54:00:aa:00:03'/>
    </dhcp>
  </ip>
  <ip address='10.10.0.1' netmask='255.255.255.0'>
    <dhcp/>
  </ip>
  <ip address='172.16.0.1' netmask='255.255.0.0'/>
  <ip family='ipv6' address='fd00::1' prefix='64'>
    <dhcp>
      <host id='0:3:0:1:0:16:3e:11:22:33' name='v6' ip='fd00::10'/>
    </dhcp>
  </ip>
</network>
`;
    const n = parseNetworkXml(xml);
    assert.equal(n.forwardMode, undefined);
    assert.deepEqual(n.addresses, [
      {
        address: '10.9.0.1',
        family: 'ipv4',
        prefix: 16,
        dhcp: {
          ranges: [
            { start: '10.9.1.1', end: '10.9.1.200' },
            { start: '10.9.2.1', end: '10.9.2.9' },
          ],
          hosts: [
            { mac: '52:54:00:aa:00:01', name: 'a', ip: '10.9.0.10' },
            { name: 'only-name', ip: '10.9.0.11' },
          ],
        },
      },
      { address: '10.10.0.1', family: 'ipv4', prefix: 24, dhcp: { ranges: [], hosts: [] } },
      { address: '172.16.0.1', family: 'ipv4', prefix: 16 },
      { address: 'fd00::1', family: 'ipv6', prefix: 64, dhcp: { ranges: [], hosts: [{ name: 'v6', ip: 'fd00::10' }] } },
    ]);
  });

  it('LIBVIRT_OUTPUT_INVALID for something else', () => {
    assert.throws(() => parseNetworkXml('<domain><name>x</name></domain>'), (e: unknown) => isVmdeskError(e, 'LIBVIRT_OUTPUT_INVALID'));
    assert.throws(() => parseNetworkXml('<network><name>x'), (e: unknown) => isVmdeskError(e, 'LIBVIRT_OUTPUT_INVALID'));
  });
});
