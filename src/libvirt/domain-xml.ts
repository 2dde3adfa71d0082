/**
 * Reads what vmdesk needs from `virsh dumpxml`: the consoles (<graphics>) and
 * the NICs (<interface>), per libvirt's domain XML format
 * (https://libvirt.org/formatdomain.html#graphical-framebuffers). Pure.
 *
 * A graphics `passwd` attribute is only ever turned into `hasPassword`; its
 * value is dropped here and never stored, logged or returned.
 */
import { libvirtXmlParser } from './xml-parser.js';
import { VmdeskError } from '../errors.js';

export type ListenType = 'address' | 'network' | 'socket' | 'none';

export interface GraphicsListen {
  type: ListenType | string;
  address?: string;
  socket?: string;
  network?: string;
}

export interface GraphicsInfo {
  type: 'vnc' | 'spice' | string;
  /** The TCP port; undefined while not running with autoport (`-1`) or for socket-only consoles. */
  port?: number;
  autoport: boolean;
  /** `<listen>` children; when a domain has only the legacy `listen=` attribute, one `address` entry made from it. */
  listens: GraphicsListen[];
  /** VNC on a unix socket (`socket=` attribute or a `<listen type='socket'>` child). */
  socket?: string;
  hasPassword: boolean;
  keymap?: string;
  /** SPICE's TLS port. */
  tlsPort?: number;
}

export interface InterfaceInfo {
  mac: string;
  /** `network`, `bridge`, `direct`, `user`, ... */
  type: string;
  /** The libvirt network name (type network) or the bridge/device name. */
  source?: string;
  /** While running, the host bridge a `network` interface is plugged into. */
  bridge?: string;
  /** While running, the host-side tap device (vnetN). */
  targetDev?: string;
  model?: string;
}

export interface DomainInfo {
  name: string;
  uuid: string;
  /** The `<domain id=...>` of a running domain. */
  id?: number;
  title?: string;
  graphics: GraphicsInfo[];
  interfaces: InterfaceInfo[];
}

type XmlNode = Record<string, unknown>;

const ARRAY_PATHS = new Set(['domain.devices.graphics', 'domain.devices.graphics.listen', 'domain.devices.interface']);

const parser = libvirtXmlParser(ARRAY_PATHS);

function invalid(message: string, cause?: unknown): VmdeskError {
  return new VmdeskError('LIBVIRT_OUTPUT_INVALID', `virsh dumpxml: ${message}`, cause === undefined ? {} : { cause });
}

function isNode(v: unknown): v is XmlNode {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function attr(node: unknown, name: string): string | undefined {
  if (!isNode(node)) return undefined;
  const v = node[`@_${name}`];
  return typeof v === 'string' ? v : undefined;
}

function child(node: unknown, name: string): unknown {
  return isNode(node) ? node[name] : undefined;
}

function children(node: unknown, name: string): unknown[] {
  const v = child(node, name);
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Element text: a string, or the `#text` of an element that also has attributes. */
function text(node: unknown): string | undefined {
  if (typeof node === 'string') return node;
  if (isNode(node) && typeof node['#text'] === 'string') return node['#text'];
  return undefined;
}

function port(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  const n = Number(value);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function parseGraphics(g: unknown): GraphicsInfo {
  const listens: GraphicsListen[] = children(g, 'listen').map((l) => ({
    type: attr(l, 'type') ?? 'address',
    ...(attr(l, 'address') !== undefined ? { address: attr(l, 'address') } : {}),
    ...(attr(l, 'socket') !== undefined ? { socket: attr(l, 'socket') } : {}),
    ...(attr(l, 'network') !== undefined ? { network: attr(l, 'network') } : {}),
  }));
  const listenAttr = attr(g, 'listen');
  // Before libvirt 0.9.4 (and in hand-written XML) the address is only the attribute.
  if (listens.length === 0 && listenAttr !== undefined) listens.push({ type: 'address', address: listenAttr });
  const socket = attr(g, 'socket') ?? listens.find((l) => l.type === 'socket' && l.socket !== undefined)?.socket;
  const info: GraphicsInfo = {
    type: attr(g, 'type') ?? 'unknown',
    autoport: attr(g, 'autoport') === 'yes',
    listens,
    hasPassword: attr(g, 'passwd') !== undefined,
  };
  const p = port(attr(g, 'port'));
  if (p !== undefined) info.port = p;
  if (socket !== undefined) info.socket = socket;
  const keymap = attr(g, 'keymap');
  if (keymap !== undefined) info.keymap = keymap;
  const tls = port(attr(g, 'tlsPort'));
  if (tls !== undefined) info.tlsPort = tls;
  return info;
}

function parseInterface(i: unknown): InterfaceInfo | undefined {
  const mac = attr(child(i, 'mac'), 'address');
  if (mac === undefined) return undefined;
  const type = attr(i, 'type') ?? 'unknown';
  const src = child(i, 'source');
  const source = type === 'network' ? attr(src, 'network') : (attr(src, 'bridge') ?? attr(src, 'dev') ?? attr(src, 'network'));
  const info: InterfaceInfo = { mac: mac.toLowerCase(), type };
  if (source !== undefined) info.source = source;
  const bridge = type === 'network' ? attr(src, 'bridge') : source;
  if (bridge !== undefined && (type === 'network' || type === 'bridge')) info.bridge = bridge;
  const targetDev = attr(child(i, 'target'), 'dev');
  if (targetDev !== undefined) info.targetDev = targetDev;
  const model = attr(child(i, 'model'), 'type');
  if (model !== undefined) info.model = model;
  return info;
}

/** Parses one `virsh dumpxml` document; throws LIBVIRT_OUTPUT_INVALID when it is not a domain. */
export function parseDomainXml(xml: string): DomainInfo {
  let doc: unknown;
  // No validation pass (parse(xml, true)): it added ~100 ms of CPU to a cold `vmdesk ls` of 108 domains, and
  // libvirt writes well-formed XML with every name escaped. A cut-off document is still refused by its missing end tag.
  if (!xml.trimEnd().endsWith('</domain>')) throw invalid('not a whole <domain> document');
  try {
    doc = parser.parse(xml);
  } catch (e) {
    throw invalid('not well-formed XML', e);
  }
  const domain = child(doc, 'domain');
  if (!isNode(domain)) throw invalid('no <domain> element');
  const name = text(child(domain, 'name'));
  const uuid = text(child(domain, 'uuid'))?.trim();
  if (name === undefined || name === '' || uuid === undefined) throw invalid('<domain> without <name> or <uuid>');
  const devices = child(domain, 'devices');
  const info: DomainInfo = {
    name,
    uuid: uuid.toLowerCase(),
    graphics: children(devices, 'graphics').map(parseGraphics),
    interfaces: children(devices, 'interface')
      .map(parseInterface)
      .filter((x): x is InterfaceInfo => x !== undefined),
  };
  const id = attr(domain, 'id');
  if (id !== undefined && /^\d+$/.test(id)) info.id = Number(id);
  const title = text(child(domain, 'title'));
  if (title !== undefined) info.title = title;
  return info;
}

/** True for 127.0.0.0/8, ::1 and `localhost`: reachable only from the hypervisor itself. */
export function isLoopback(address: string): boolean {
  const a = address.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (a === 'localhost' || a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)) return true;
  // IPv4-mapped loopback.
  return /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/**
 * True when the console is reachable from other machines: it listens on
 * 0.0.0.0, ::, or any non-loopback address (a network listen included).
 * Unix-socket and `none` consoles are not exposed.
 */
export function isExposed(g: GraphicsInfo): boolean {
  return g.listens.some((l) => {
    if (l.type === 'socket' || l.type === 'none') return false;
    if (l.type === 'network') return l.address === undefined || !isLoopback(l.address);
    return l.address !== undefined && !isLoopback(l.address);
  });
}
