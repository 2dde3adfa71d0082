/**
 * What `virsh define --validate` makes of a domain XML on the demo host: the
 * new persistent definition of an existing demo domain (same UUID and name)
 * or of a new one, or libvirt's error for it. The name, UUID and consoles
 * are read with vmdesk's own parseDomainXml, the rest with the same XML
 * parser settings. Only what a DemoDomain models is taken over (consoles,
 * NIC, memory, vCPUs, description); a definition the demo cannot model is
 * refused with libvirt's "not supported" error rather than half applied.
 * Error texts follow libvirt 9 (src/conf/virdomainobjlist.c,
 * src/conf/domain_conf.c, src/util/virxml.c). Pure; a demo, never used by a real code path.
 */
import { XMLValidator } from 'fast-xml-parser';
import { parseDomainXml, type DomainInfo } from '../libvirt/domain-xml.js';
import { libvirtXmlParser } from '../libvirt/xml-parser.js';
import type { DemoDomain, DemoVnc } from './demo-inventory.js';

export type DefineResult =
  /** `replaces` is the definition it takes the place of; undefined for a new domain. */
  | { isOk: true; def: DemoDomain; replaces: DemoDomain | undefined }
  /** libvirt's message, as virsh prints it after `error: ` (it may span lines). */
  | { isOk: false; message: string };

export interface DefineContext {
  /** The domains' current persistent definitions. */
  domains: readonly DemoDomain[];
  /** A UUID for a definition without one (libvirt generates it). */
  newUuid: () => string;
  /** A MAC for a NIC without one (libvirt generates 52:54:00:xx:xx:xx). */
  newMac: () => string;
  /** The address the network's DHCP gives a NIC the demo has not seen. */
  addressFor: (network: string, mac: string) => string;
}

type XmlNode = Record<string, unknown>;

const parser = libvirtXmlParser(new Set(['domain.devices.graphics', 'domain.devices.graphics.listen', 'domain.devices.interface']));
const SCHEMA = '/usr/share/libvirt/schemas/domain.rng';
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
/** virScaleInteger's units (src/util/virutil.c), to bytes. */
const UNITS: Record<string, number> = { b: 1, bytes: 1, k: 1024, kib: 1024, kb: 1000, m: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2, g: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3, t: 1024 ** 4, tib: 1024 ** 4, tb: 1000 ** 4 };

const refuse = (message: string): DefineResult => ({ isOk: false, message });
/** VIR_ERR_XML_INVALID_SCHEMA: libxml2's RelaxNG complaint under libvirt's own line. */
const schemaError = (detail: string): DefineResult => refuse(`XML document failed to validate against schema: Unable to validate doc against ${SCHEMA}\n${detail}`);
/** VIR_ERR_NO_SUPPORT, for what a real libvirt would take but the demo does not model. */
const notModelled = (what: string): DefineResult => refuse(`this function is not supported by the connection driver: the vmdesk demo hypervisor models ${what}`);

function node(v: unknown): XmlNode | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as XmlNode) : undefined;
}

function list(v: unknown): unknown[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const t = node(v)?.['#text'];
  return typeof t === 'string' ? t : undefined;
}

function attr(v: unknown, name: string): string | undefined {
  const a = node(v)?.[`@_${name}`];
  return typeof a === 'string' ? a : undefined;
}

/** `<memory unit=...>N</memory>` in MiB, rounded up; undefined when it is not a number libvirt takes. */
function memoryMiB(v: unknown): number | undefined {
  const n = text(v)?.trim();
  const unit = (attr(v, 'unit') ?? 'KiB').toLowerCase();
  const scale = UNITS[unit];
  if (n === undefined || !/^\d+$/.test(n) || scale === undefined) return undefined;
  return Math.ceil((Number(n) * scale) / 1024 ** 2);
}

/** The one VNC console a DemoDomain has, from parseDomainXml's reading; a message when it is something else. */
function vncOf(info: DomainInfo): { vnc: DemoVnc } | { message: string } {
  const graphics = info.graphics;
  if (graphics.length !== 1 || graphics[0]!.type !== 'vnc') return { message: 'exactly one VNC console (<graphics type="vnc">) per VM' };
  const g = graphics[0]!;
  if (g.socket !== undefined) return { vnc: { kind: 'socket', path: g.socket } };
  const first = g.listens[0];
  if (first !== undefined && first.type !== 'address') return { message: 'VNC consoles that listen on an address or a unix socket' };
  // An address-less listen takes qemu.conf's vnc_listen, which is 127.0.0.1 on the demo host.
  const listen = first?.address ?? '127.0.0.1';
  const port = g.autoport ? undefined : g.port;
  return { vnc: port === undefined ? { kind: 'tcp', listen } : { kind: 'tcp', listen, port } };
}

/** Reads `xml` as `virsh define --validate` would on the demo host. */
export function readDomainDefinition(xml: string, ctx: DefineContext): DefineResult {
  if (xml.trim() === '') return refuse('(domain_definition):1: Document is empty');
  const wellFormed = XMLValidator.validate(xml);
  if (wellFormed !== true) return refuse(`(domain_definition):${wellFormed.err.line}: ${wellFormed.err.msg}`);
  const doc = node(parser.parse(xml)) ?? {};
  const root = Object.keys(doc).find((k) => !k.startsWith('?') && !k.startsWith('#'));
  if (root !== 'domain') return refuse(`XML error: expecting root element of 'domain', not '${root ?? ''}'`);
  const dom = node(doc['domain']) ?? {};
  if (attr(dom, 'type') === undefined) return schemaError('Element domain failed to validate attributes');
  const name = text(dom['name']);
  const mem = memoryMiB(dom['memory']);
  if (name === undefined || name === '' || mem === undefined || dom['os'] === undefined) return schemaError('Element domain failed to validate content');
  const uuidText = text(dom['uuid'])?.trim();
  if (uuidText !== undefined && !UUID.test(uuidText)) return schemaError('Element uuid failed to validate content');

  // libvirt generates a UUID for a definition without one; vmdesk's parser needs it written out.
  const withUuid = uuidText === undefined ? xml.replace(/<\/name>/, `</name><uuid>${ctx.newUuid()}</uuid>`) : xml;
  const info = parseDomainXml(withUuid);
  const uuid = info.uuid.replace(/-/g, '').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');

  // virDomainObjListAddLocked: a UUID belongs to one name and a name to one UUID.
  const byUuid = ctx.domains.find((d) => d.uuid === uuid);
  if (byUuid && byUuid.name !== info.name) return refuse(`operation failed: domain '${byUuid.name}' is already defined with uuid ${byUuid.uuid}`);
  const byName = ctx.domains.find((d) => d.name === info.name);
  if (!byUuid && byName) return refuse(`operation failed: domain '${info.name}' already exists with uuid ${byName.uuid}`);

  // virDomainGraphicsListensParseXML: the legacy listen= attribute must repeat the first <listen>'s address.
  for (const g of list(node(dom['devices'])?.['graphics'])) {
    const listenAttr = attr(g, 'listen');
    const firstListen = list(node(g)?.['listen'])[0];
    const firstAddress = attr(firstListen, 'address');
    if (listenAttr !== undefined && firstListen !== undefined && (attr(firstListen, 'type') ?? 'address') === 'address' && firstAddress !== undefined && firstAddress !== listenAttr) {
      return refuse(`XML error: graphics 'listen' attribute '${listenAttr}' must match 'address' attribute of first listen element (found '${firstAddress}')`);
    }
  }

  const vnc = vncOf(info);
  if ('message' in vnc) return notModelled(vnc.message);
  const nic = list(node(dom['devices'])?.['interface']).find((i) => attr(i, 'type') === 'network');
  const network = attr(node(nic)?.['source'], 'network');
  if (nic === undefined || network === undefined) return notModelled('VMs with a NIC on a libvirt network (<interface type="network">)');
  const mac = (attr(node(nic)?.['mac'], 'address') ?? ctx.newMac()).toLowerCase();

  const passwd = attr(list(node(dom['devices'])?.['graphics'])[0], 'passwd');
  const vcpuText = text(dom['vcpu'])?.trim();
  const description = text(dom['description']);
  const base: DemoDomain = byUuid ?? {
    name: info.name,
    uuid,
    description: '',
    os: node(dom['features'])?.['hyperv'] !== undefined ? 'windows' : 'linux',
    memoryMiB: mem,
    vcpus: 1,
    isRunning: false,
    mac,
    network,
    ip: '',
    vnc: vnc.vnc,
    background: '#3c4650',
  };
  const def: DemoDomain = {
    ...base,
    description: description ?? '',
    memoryMiB: mem,
    vcpus: vcpuText !== undefined && /^\d+$/.test(vcpuText) && Number(vcpuText) > 0 ? Number(vcpuText) : 1,
    mac,
    network,
    ip: byUuid && byUuid.mac === mac && byUuid.network === network ? byUuid.ip : ctx.addressFor(network, mac),
    vnc: vnc.vnc,
  };
  if (passwd !== undefined) def.vncPassword = passwd;
  else delete def.vncPassword;
  return { isOk: true, def, replaces: byUuid };
}
