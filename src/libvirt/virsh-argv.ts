/**
 * argv arrays for the virsh commands vmdesk runs. Pure: nothing is executed
 * or quoted here (shell-quote.ts does that at the SSH edge).
 *
 * Domains and networks are always passed as the value of `--domain` /
 * `--network`, never as a bare positional word: virsh then takes the next
 * argv element as the value even when it starts with `-` (a VM may be called
 * `-rf`; libvirt allows any character in a name except '/').
 *
 * virsh reads that value as a domain ID first, then a UUID, then a name
 * (vshLookupDomainBy), networks as a UUID, then a name: so every builder takes
 * a DomainUuid / NetworkUuid, never a name. The two `ByName` builders are the
 * only way a name reaches virsh, and their output names the object found:
 * the caller must check that name against the one asked for (remote.ts).
 */
import type { DomainUuid, NetworkUuid } from './domain-list.js';

/** libvirt's system-wide QEMU driver, the one the seed's `virsh` talks to. */
export const DEFAULT_URI = 'qemu:///system';

/** The ways `virsh domifaddr --source` can look up a guest's addresses. */
export type AddressSource = 'lease' | 'arp' | 'agent';

/** `virsh -c URI ARGS...` */
export function virshArgv(uri: string, ...args: string[]): string[] {
  return ['virsh', '-c', uri, ...args];
}

/** `virsh version`: library, API and hypervisor versions (also a cheap "is libvirtd up" probe). */
export function versionArgv(uri: string): string[] {
  return virshArgv(uri, 'version');
}

/** One UUID per line, for all domains, or only those in one state. */
export function listUuidsArgv(uri: string, state?: 'running' | 'paused' | 'shutoff' | 'other'): string[] {
  return virshArgv(uri, 'list', '--uuid', ...(state ? [`--state-${state}`] : ['--all']));
}

/** One name per line for all domains (a name never contains a newline: libvirt rejects it). */
export function listNamesArgv(uri: string): string[] {
  return virshArgv(uri, 'list', '--all', '--name');
}

/** The human table ` Id   Name   State`; only for people and for parseDomainTable's fallback. */
export function listTableArgv(uri: string): string[] {
  return virshArgv(uri, 'list', '--all');
}

/** `domstate --reason`: `running (booted)`, `shut off (destroyed)`, ... */
export function domstateArgv(uri: string, uuid: DomainUuid): string[] {
  return virshArgv(uri, 'domstate', '--domain', uuid, '--reason');
}

/**
 * `dumpxml`; `securityInfo` adds `passwd` attributes, the only way to learn
 * that a console has a password at all (they are left out otherwise). Needs a
 * read-write connection; vmdesk never keeps the value.
 */
export function dumpxmlArgv(uri: string, uuid: DomainUuid, opts: { inactive?: boolean; securityInfo?: boolean } = {}): string[] {
  return virshArgv(uri, 'dumpxml', '--domain', uuid, ...(opts.inactive ? ['--inactive'] : []), ...(opts.securityInfo ? ['--security-info'] : []));
}

/** `dumpxml` of whatever virsh finds for `name` (an ID, a UUID or a name): only valid if its `<name>` is `name`. */
export function dumpxmlByNameArgv(uri: string, name: string, opts: { securityInfo?: boolean } = {}): string[] {
  return virshArgv(uri, 'dumpxml', '--domain', name, ...(opts.securityInfo ? ['--security-info'] : []));
}

export function domifaddrArgv(uri: string, uuid: DomainUuid, source: AddressSource): string[] {
  return virshArgv(uri, 'domifaddr', '--domain', uuid, '--source', source);
}

/** `domdisplay`: the URI a viewer would use (`vnc://127.0.0.1:0`); never with `--include-password`. */
export function domdisplayArgv(uri: string, uuid: DomainUuid): string[] {
  return virshArgv(uri, 'domdisplay', '--domain', uuid);
}

export function netListUuidsArgv(uri: string): string[] {
  return virshArgv(uri, 'net-list', '--all', '--uuid');
}

export function netListNamesArgv(uri: string): string[] {
  return virshArgv(uri, 'net-list', '--all', '--name');
}

export function netDumpxmlArgv(uri: string, uuid: NetworkUuid): string[] {
  return virshArgv(uri, 'net-dumpxml', '--network', uuid);
}

/** `net-dumpxml` of whatever virsh finds for `name` (a UUID or a name): only valid if its `<name>` is `name`. */
export function netDumpxmlByNameArgv(uri: string, name: string): string[] {
  return virshArgv(uri, 'net-dumpxml', '--network', name);
}

export function netDhcpLeasesArgv(uri: string, uuid: NetworkUuid, mac?: string): string[] {
  return virshArgv(uri, 'net-dhcp-leases', '--network', uuid, ...(mac ? ['--mac', mac] : []));
}

/** The host's neighbour table (`ip neigh show`), where the seed looked up its VM with `arp -n`. */
export function ipNeighArgv(): string[] {
  return ['ip', 'neigh', 'show'];
}

/** `define --validate FILE`: replaces the persistent definition atomically, after libvirt's schema check. */
export function defineArgv(uri: string, file: string): string[] {
  return virshArgv(uri, 'define', '--file', file, '--validate');
}

export function startArgv(uri: string, uuid: DomainUuid): string[] {
  return virshArgv(uri, 'start', '--domain', uuid);
}

/** A clean ACPI shutdown request; returns at once (the guest may ignore it). */
export function shutdownArgv(uri: string, uuid: DomainUuid): string[] {
  return virshArgv(uri, 'shutdown', '--domain', uuid);
}

/** Pulls the plug: only after a bounded wait for `shutdown` and with the user's consent (--force). */
export function destroyArgv(uri: string, uuid: DomainUuid): string[] {
  return virshArgv(uri, 'destroy', '--domain', uuid);
}

/** `net-info`: name, UUID, `Active: yes|no`, `Persistent:`, `Bridge:`. */
export function netInfoArgv(uri: string, uuid: NetworkUuid): string[] {
  return virshArgv(uri, 'net-info', '--network', uuid);
}

/** `net-update` of one `<host>` of the network's DHCP (the XML text goes as one argv element). */
export function netUpdateDhcpHostArgv(uri: string, uuid: NetworkUuid, command: 'add' | 'modify' | 'delete', hostXml: string, opts: { live: boolean }): string[] {
  return virshArgv(uri, 'net-update', '--network', uuid, '--command', command, '--section', 'ip-dhcp-host', '--xml', hostXml, ...(opts.live ? ['--live'] : []), '--config');
}
