/**
 * Reads a libvirt network's name, bridge and addresses from `virsh
 * net-dumpxml` (https://libvirt.org/formatnetwork.html). Pure.
 */
import { libvirtXmlParser } from './xml-parser.js';
import { VmdeskError } from '../errors.js';

/** A `<dhcp>` of an `<ip>`: dnsmasq's dynamic ranges and its static host reservations. */
export interface DhcpConfig {
  ranges: { start: string; end: string }[];
  /** IPv4 hosts are keyed by `mac` (lower case) or `name`; IPv6 hosts by `id` or `name`, which is not kept here. */
  hosts: { mac?: string; name?: string; ip: string }[];
}

/** One `<ip>` of a network: the host's address on it, and its DHCP service. */
export interface NetworkAddress {
  address: string;
  prefix?: number;
  family: 'ipv4' | 'ipv6';
  /** Present when this `<ip>` has a `<dhcp>` element. */
  dhcp?: DhcpConfig;
}

/** What vmdesk reads of a libvirt network. */
export interface NetworkInfo {
  name: string;
  uuid: string;
  /** `nat`, `route`, `bridge`, `open`, ...; undefined for an isolated network. */
  forwardMode?: string;
  /** The host bridge (virbr0), where the VMs' neighbour entries appear. */
  bridge?: string;
  /** The host's own addresses on the network, e.g. 192.168.122.1/24. */
  addresses: NetworkAddress[];
}

const parser = libvirtXmlParser(new Set(['network.ip', 'network.ip.dhcp.range', 'network.ip.dhcp.host']));

type XmlNode = Record<string, unknown>;

function node(v: unknown): XmlNode | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as XmlNode) : undefined;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const n = node(v);
  return typeof n?.['#text'] === 'string' ? n['#text'] : undefined;
}

/** 255.255.255.0 -> 24; undefined unless the mask is contiguous. */
function maskToPrefix(mask: string): number | undefined {
  const parts = mask.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  const bits = parts.map((p) => p.toString(2).padStart(8, '0')).join('');
  return /^1*0*$/.test(bits) ? bits.indexOf('0') === -1 ? 32 : bits.indexOf('0') : undefined;
}

function list(v: unknown): unknown[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function parseDhcp(v: unknown): DhcpConfig | undefined {
  // An empty <dhcp/> (or one holding only whitespace) reads as a string.
  const dhcp = node(v) ?? (typeof v === 'string' ? {} : undefined);
  if (!dhcp) return undefined;
  const ranges: DhcpConfig['ranges'] = [];
  for (const r of list(dhcp['range'])) {
    const start = node(r)?.['@_start'];
    const end = node(r)?.['@_end'];
    if (typeof start === 'string' && typeof end === 'string') ranges.push({ start, end });
  }
  const hosts: DhcpConfig['hosts'] = [];
  for (const h of list(dhcp['host'])) {
    const n = node(h);
    const ip = n?.['@_ip'];
    if (typeof ip !== 'string') continue;
    const mac = n?.['@_mac'];
    const name = n?.['@_name'];
    hosts.push({ ...(typeof mac === 'string' ? { mac: mac.toLowerCase() } : {}), ...(typeof name === 'string' ? { name } : {}), ip });
  }
  return { ranges, hosts };
}

/** Parses one `virsh net-dumpxml` document; throws LIBVIRT_OUTPUT_INVALID when it is not a network. */
export function parseNetworkXml(xml: string): NetworkInfo {
  let doc: unknown;
  try {
    doc = parser.parse(xml, true);
  } catch (e) {
    throw new VmdeskError('LIBVIRT_OUTPUT_INVALID', 'virsh net-dumpxml: not well-formed XML', { cause: e });
  }
  const net = node(node(doc)?.['network']);
  const name = str(net?.['name']);
  const uuid = str(net?.['uuid'])?.trim();
  if (!net || !name || !uuid) throw new VmdeskError('LIBVIRT_OUTPUT_INVALID', 'virsh net-dumpxml: no <network> with <name> and <uuid>');
  const info: NetworkInfo = { name, uuid: uuid.toLowerCase(), addresses: [] };
  const mode = node(net['forward'])?.['@_mode'];
  if (typeof mode === 'string') info.forwardMode = mode;
  else if (net['forward'] !== undefined) info.forwardMode = 'nat';
  const bridge = node(net['bridge'])?.['@_name'];
  if (typeof bridge === 'string') info.bridge = bridge;
  for (const ip of (net['ip'] as unknown[] | undefined) ?? []) {
    const n = node(ip);
    const address = n?.['@_address'];
    if (typeof address !== 'string') continue;
    const family = n?.['@_family'] === 'ipv6' || address.includes(':') ? 'ipv6' : 'ipv4';
    const prefixAttr = n?.['@_prefix'];
    const netmask = n?.['@_netmask'];
    const prefix = typeof prefixAttr === 'string' ? Number(prefixAttr) : typeof netmask === 'string' ? maskToPrefix(netmask) : undefined;
    const dhcp = n && 'dhcp' in n ? parseDhcp(n['dhcp']) : undefined;
    info.addresses.push({ address, family, ...(prefix !== undefined && Number.isInteger(prefix) ? { prefix } : {}), ...(dhcp ? { dhcp } : {}) });
  }
  return info;
}
