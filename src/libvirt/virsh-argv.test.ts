import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asDomainUuid, asNetworkUuid } from './domain-list.js';
import { DEFAULT_URI, domifaddrArgv, domstateArgv, dumpxmlArgv, dumpxmlByNameArgv, listUuidsArgv, netDhcpLeasesArgv, netDumpxmlByNameArgv, startArgv, virshArgv } from './virsh-argv.js';

const UUID = asDomainUuid('766D6400-6C61-4B00-8000-000000002016');

describe('virsh argv builders', () => {
  it('puts the URI first', () => {
    assert.deepEqual(virshArgv(DEFAULT_URI, 'version'), ['virsh', '-c', 'qemu:///system', 'version']);
  });

  it('passes a domain by its UUID, as the value of --domain', () => {
    assert.deepEqual(domstateArgv(DEFAULT_URI, UUID), ['virsh', '-c', 'qemu:///system', 'domstate', '--domain', '766d6400-6c61-4b00-8000-000000002016', '--reason']);
    assert.deepEqual(domifaddrArgv(DEFAULT_URI, UUID, 'lease').slice(3), ['domifaddr', '--domain', UUID, '--source', 'lease']);
    // A name cannot be passed where virsh would read it as an ID or a UUID first.
    // @ts-expect-error a name is not a DomainUuid
    startArgv(DEFAULT_URI, '1');
    // @ts-expect-error nor is a UUID-shaped text that no exact lookup produced
    dumpxmlArgv(DEFAULT_URI, '766d6400-6c61-4b00-8000-000000002016');
    assert.throws(() => asDomainUuid('win2016'), { code: 'LIBVIRT_OUTPUT_INVALID' });
  });

  it('passes a name only to the by-name lookups, even one that looks like an option', () => {
    assert.deepEqual(dumpxmlByNameArgv(DEFAULT_URI, '-rf'), ['virsh', '-c', 'qemu:///system', 'dumpxml', '--domain', '-rf']);
    assert.deepEqual(dumpxmlByNameArgv(DEFAULT_URI, `x'; touch pwned; echo '`, { securityInfo: true }).slice(3), ['dumpxml', '--domain', `x'; touch pwned; echo '`, '--security-info']);
    assert.deepEqual(netDumpxmlByNameArgv(DEFAULT_URI, '--help').slice(3), ['net-dumpxml', '--network', '--help']);
  });

  it('adds dumpxml flags only when asked', () => {
    assert.deepEqual(dumpxmlArgv(DEFAULT_URI, UUID, { inactive: true, securityInfo: true }).slice(3), ['dumpxml', '--domain', UUID, '--inactive', '--security-info']);
  });

  it('lists all UUIDs, or those in one state', () => {
    assert.deepEqual(listUuidsArgv(DEFAULT_URI).slice(3), ['list', '--uuid', '--all']);
    assert.deepEqual(listUuidsArgv(DEFAULT_URI, 'running').slice(3), ['list', '--uuid', '--state-running']);
  });

  it('names the network with --network and filters by MAC', () => {
    const net = asNetworkUuid('766d6400-6c61-4b00-8000-0000000000ff');
    assert.deepEqual(netDhcpLeasesArgv(DEFAULT_URI, net, '52:54:00:fc:b9:e6').slice(3), ['net-dhcp-leases', '--network', net, '--mac', '52:54:00:fc:b9:e6']);
  });
});
