/**
 * Turns the inventory script's sections into VMs with states, consoles and
 * addresses. Pure: the SSH round trip happens elsewhere. An address is found
 * by MAC, from the networks' DHCP leases and from the host's neighbour table
 * (the seed's `arp -n | grep 192.168.122`), each result saying where it came from.
 */
import { VmdeskError } from '../errors.js';
import { parseDomainXml, type GraphicsInfo, type InterfaceInfo } from './domain-xml.js';
import { asDomainUuid, parseUuidList, type DomainUuid } from './domain-list.js';
import { parseArpN, parseDhcpLeases, parseDomifaddr, parseIpNeigh, type DhcpLease, type Neighbour } from './leases.js';
import type { RawInventory, RawSection } from './inventory-script.js';
import { parseNetworkXml, type NetworkInfo } from './network-xml.js';
import { virshError } from './virsh-errors.js';

export type InventoryState = 'running' | 'paused' | 'shut off' | 'other' | 'unknown';

export interface VmAddress {
  ip: string;
  mac: string;
  source: 'lease' | 'neigh' | 'agent';
  /** The lease's network name, or the neighbour entry's device. */
  via?: string;
}

export interface InventoryDomain {
  /** What vmdesk passes to virsh from then on (see DomainUuid); the name is for people and for the exact lookup. */
  uuid: DomainUuid;
  /** Undefined only when its dumpxml failed (see `error`). */
  name?: string;
  id?: number;
  state: InventoryState;
  graphics: GraphicsInfo[];
  interfaces: InterfaceInfo[];
  /** False when dumpxml had to run without --security-info (read-only access): `hasPassword` is then unknown. */
  arePasswordsKnown: boolean;
  addresses: VmAddress[];
  error?: VmdeskError;
}

export interface InventoryNetwork extends NetworkInfo {
  leases: DhcpLease[];
  error?: VmdeskError;
}

export interface Inventory {
  /** `virsh version` text. */
  version?: string;
  domains: InventoryDomain[];
  networks: InventoryNetwork[];
  neighbours: Neighbour[];
  /** Whether the script ran to its end (false: the output was cut off; what is here is still right). */
  isComplete: boolean;
}

function failure(s: RawSection): { exitCode: number | null; stderr: string } {
  return { exitCode: s.exitCode ?? null, stderr: s.stderr };
}

function isOk(s: RawSection | undefined): s is RawSection & { exitCode: 0 } {
  return s?.exitCode === 0;
}

/**
 * Assembles the inventory. Throws the classified virsh error (permission
 * denied, libvirtd down, virsh missing) when not even the domain list could be read.
 */
export function assembleInventory(raw: RawInventory): Inventory {
  const find = (kind: string, key: string): RawSection | undefined => raw.sections.filter((s) => s.kind === kind && s.key === key).pop();
  const listAll = find('list', 'all');
  if (!listAll) throw new VmdeskError('LIBVIRT_OUTPUT_INVALID', 'the inventory output has no domain list');
  if (!isOk(listAll)) throw virshError('list', failure(listAll));

  const stateOf = new Map<string, InventoryState>();
  for (const [key, state] of [
    ['running', 'running'],
    ['paused', 'paused'],
    ['shutoff', 'shut off'],
    ['other', 'other'],
  ] as const) {
    const s = find('list', key);
    if (isOk(s)) for (const u of parseUuidList(s.stdout)) stateOf.set(u, state);
  }

  const networks: InventoryNetwork[] = [];
  for (const s of raw.sections.filter((x) => x.kind === 'net-dumpxml')) {
    if (!isOk(s)) continue;
    const info = parseNetworkXml(s.stdout);
    const leasesSection = find('net-dhcp-leases', s.key);
    const net: InventoryNetwork = { ...info, leases: isOk(leasesSection) ? parseDhcpLeases(leasesSection.stdout) : [] };
    if (leasesSection && !isOk(leasesSection)) net.error = virshError('net-dhcp-leases', failure(leasesSection), { network: info.name });
    networks.push(net);
  }

  const neighSection = raw.sections.find((s) => s.kind === 'neigh');
  const neighbours = isOk(neighSection) ? (neighSection.key === 'ip' ? parseIpNeigh(neighSection.stdout) : parseArpN(neighSection.stdout)) : [];

  const domains: InventoryDomain[] = parseUuidList(listAll.stdout).map((text) => {
    const uuid = asDomainUuid(text);
    const secure = find('dumpxml', uuid);
    const plain = find('dumpxml-public', uuid);
    const xml = isOk(secure) ? secure : isOk(plain) ? plain : undefined;
    const d: InventoryDomain = {
      uuid,
      state: stateOf.get(uuid) ?? 'unknown',
      graphics: [],
      interfaces: [],
      arePasswordsKnown: xml === secure,
      addresses: [],
    };
    if (!xml) {
      const failed = plain ?? secure;
      if (failed) d.error = virshError('dumpxml', failure(failed), { vmUuid: uuid });
      return d;
    }
    const info = parseDomainXml(xml.stdout);
    d.name = info.name;
    if (info.id !== undefined) d.id = info.id;
    d.graphics = info.graphics;
    d.interfaces = info.interfaces;
    d.addresses = addressesFor(info.interfaces, networks, neighbours, find('domifaddr-agent', uuid));
    return d;
  });

  const version = find('version', '-');
  return {
    ...(isOk(version) ? { version: version.stdout.trim() } : {}),
    domains,
    networks,
    neighbours,
    isComplete: raw.isComplete,
  };
}

export function addressesFor(interfaces: InterfaceInfo[], networks: InventoryNetwork[], neighbours: Neighbour[], agent: RawSection | undefined): VmAddress[] {
  const out: VmAddress[] = [];
  const seen = new Set<string>();
  const add = (a: VmAddress): void => {
    const k = `${a.source} ${a.ip} ${a.mac}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push(a);
  };
  const macs = new Set(interfaces.map((i) => i.mac));
  for (const net of networks) {
    for (const l of net.leases) if (macs.has(l.mac)) add({ ip: l.ipAddress, mac: l.mac, source: 'lease', via: net.name });
  }
  for (const n of neighbours) {
    if (n.mac !== undefined && macs.has(n.mac) && n.state !== 'FAILED' && n.state !== 'INCOMPLETE') add({ ip: n.ip, mac: n.mac, source: 'neigh', via: n.dev });
  }
  if (isOk(agent)) {
    for (const a of parseDomifaddr(agent.stdout)) {
      if (a.mac !== undefined && macs.has(a.mac) && a.ipAddress !== '127.0.0.1' && a.ipAddress !== '::1') add({ ip: a.ipAddress, mac: a.mac, source: 'agent', via: a.name });
    }
  }
  return out;
}
