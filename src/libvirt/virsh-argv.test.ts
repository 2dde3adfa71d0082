import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_URI, domifaddrArgv, domstateArgv, dumpxmlArgv, listUuidsArgv, netDhcpLeasesArgv, virshArgv } from './virsh-argv.js';

describe('virsh argv builders', () => {
  it('puts the URI first', () => {
    assert.deepEqual(virshArgv(DEFAULT_URI, 'version'), ['virsh', '-c', 'qemu:///system', 'version']);
  });

  it('passes a domain as the value of --domain, even one that looks like an option', () => {
    assert.deepEqual(dumpxmlArgv(DEFAULT_URI, '-rf'), ['virsh', '-c', 'qemu:///system', 'dumpxml', '--domain', '-rf']);
    assert.deepEqual(domstateArgv(DEFAULT_URI, '--help'), ['virsh', '-c', 'qemu:///system', 'domstate', '--domain', '--help', '--reason']);
    assert.deepEqual(domifaddrArgv(DEFAULT_URI, `x'; touch pwned; echo '`, 'lease'), [
      'virsh', '-c', 'qemu:///system', 'domifaddr', '--domain', `x'; touch pwned; echo '`, '--source', 'lease',
    ]);
  });

  it('adds dumpxml flags only when asked', () => {
    assert.deepEqual(dumpxmlArgv(DEFAULT_URI, 'w', { inactive: true, securityInfo: true }).slice(3), ['dumpxml', '--domain', 'w', '--inactive', '--security-info']);
  });

  it('lists all UUIDs, or those in one state', () => {
    assert.deepEqual(listUuidsArgv(DEFAULT_URI).slice(3), ['list', '--uuid', '--all']);
    assert.deepEqual(listUuidsArgv(DEFAULT_URI, 'running').slice(3), ['list', '--uuid', '--state-running']);
  });

  it('names the network with --network and filters by MAC', () => {
    assert.deepEqual(netDhcpLeasesArgv(DEFAULT_URI, 'default', '52:54:00:fc:b9:e6').slice(3), ['net-dhcp-leases', '--network', 'default', '--mac', '52:54:00:fc:b9:e6']);
  });
});
