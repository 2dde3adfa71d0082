/**
 * Reads a libvirt network's name, bridge and addresses from `virsh
 * net-dumpxml` (https://libvirt.org/formatnetwork.html). Pure.
 */
import { libvirtXmlParser } from './xml-parser.js';
import { VmdeskError } from '../errors.js';

export interface NetworkInfo {
  name: string;
  uuid: string;
  /** `nat`, `route`, `bridge`, `open`, ...; undefined for an isolated network. */
  forwardMode?: string;
  /** The host bridge (virbr0), where the VMs' neighbour entries appear. */
  bridge?: string;
  /** The host's own addresses on the network, e.g. 192.168.122.1/24. */
  addresses: { address: string; prefix?: number; family: 'ipv4' | 'ipv6' }[];
}

const parser = libvirtXmlParser(new Set(['network.ip']));

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
    info.addresses.push({ address, family, ...(prefix !== undefined && Number.isInteger(prefix) ? { prefix } : {}) });
  }
  return info;
}
