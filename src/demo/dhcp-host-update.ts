/**
 * `virsh net-update NET add|add-first|add-last|modify|delete ip-dhcp-host XML`
 * on a demo network's DHCP host list, with libvirt 9's matching rules and
 * error texts (src/conf/network_conf.c: virNetworkDHCPHostDefParseXML and
 * virNetworkDefUpdateIPDHCPHost): add refuses an entry whose MAC, name *or*
 * IP another entry has; modify replaces the first entry matching MAC, IP or
 * name; delete removes the first entry matching every attribute given.
 * Demo networks are IPv4 with one `<ip>`. Pure; a demo, never used by a real code path.
 */
import { isIP } from 'node:net';
import { XMLValidator } from 'fast-xml-parser';
import { libvirtXmlParser } from '../libvirt/xml-parser.js';
import type { DemoNetwork, DemoReservation } from './demo-inventory.js';

/** virsh's `add` is `add-last`. */
export type DhcpHostCommand = 'add-first' | 'add-last' | 'modify' | 'delete';

export type DhcpHostUpdate = { isOk: true; reservations: DemoReservation[] } | { isOk: false; message: string };

const parser = libvirtXmlParser(new Set());
const MAC = /^[0-9a-f]{1,2}(:[0-9a-f]{1,2}){5}$/i;

const refuse = (message: string): DhcpHostUpdate => ({ isOk: false, message });
const xmlError = (message: string): DhcpHostUpdate => refuse(`XML error: ${message}`);
const invalid = (message: string): DhcpHostUpdate => refuse(`Requested operation is not valid: ${message}`);

/** virMacAddrParse then virMacAddrFormat: six octets, two lower-case hex digits each. */
function normalMac(mac: string): string {
  return mac
    .split(':')
    .map((o) => o.toLowerCase().padStart(2, '0'))
    .join(':');
}

/** glib's printf shows a NULL string as `(null)`, as libvirt's messages do for an absent name. */
function shown(s: string | undefined): string {
  return s ?? '(null)';
}

/** Applies one `net-update ... ip-dhcp-host` to a copy of the network's host list. */
export function updateDhcpHosts(net: DemoNetwork, command: DhcpHostCommand, xml: string, parentIndex?: number): DhcpHostUpdate {
  if (parentIndex !== undefined && parentIndex !== 0) {
    return invalid(`couldn't update dhcp host entry - no <ip> element found at index ${parentIndex} in network '${net.name}'`);
  }
  if (xml.trim() === '') return refuse('(network_update_xml):1: Document is empty');
  const wellFormed = XMLValidator.validate(xml);
  if (wellFormed !== true) return refuse(`(network_update_xml):${wellFormed.err.line}: ${wellFormed.err.msg}`);
  const doc = parser.parse(xml) as Record<string, unknown>;
  const root = Object.keys(doc).find((k) => !k.startsWith('?') && !k.startsWith('#')) ?? '';
  if (root !== 'host') return xmlError(`unexpected element <${root}>, expecting <host>, while updating network '${net.name}'`);
  const el = doc['host'];
  const attr = (name: string): string | undefined => {
    const v = typeof el === 'object' && el !== null ? (el as Record<string, unknown>)[`@_${name}`] : undefined;
    return typeof v === 'string' ? v : undefined;
  };
  const mac = attr('mac');
  const name = attr('name');
  const ip = attr('ip');
  if (mac !== undefined) {
    if (!MAC.test(mac)) return xmlError(`Cannot parse MAC address '${mac}' in network '${net.name}'`);
    if (parseInt(mac.split(':')[0]!, 16) & 1) return xmlError(`expected unicast mac address, found multicast '${mac}' in network '${net.name}'`);
  }
  if (name !== undefined && !/^[A-Za-z0-9]/.test(name)) return xmlError(`Cannot use host name '${name}' in network '${net.name}'`);
  if (ip !== undefined && isIP(ip) === 0) return xmlError(`Invalid IP address in static host definition for network '${net.name}'`);
  const isPartialOkay = command === 'delete';
  if (isPartialOkay) {
    if (mac === undefined && name === undefined && ip === undefined) {
      return xmlError(`At least one of name, mac, or ip attribute must be specified for static host definition in network '${net.name}'`);
    }
  } else {
    if (mac === undefined && name === undefined) return xmlError(`Static host definition in IPv4 network '${net.name}' must have mac or name attribute`);
    if (ip === undefined) return xmlError(`Missing IP address in static host definition for network '${net.name}'`);
    if (isIP(ip) !== 4) return invalid("the address family of a host entry IP must match the address family of the dhcp element's parent");
  }

  const hosts = [...net.reservations];
  const sameMac = (h: DemoReservation) => mac !== undefined && h.mac !== undefined && normalMac(mac) === normalMac(h.mac);
  const sameName = (h: DemoReservation) => name !== undefined && h.name === name;
  const sameIp = (h: DemoReservation) => ip !== undefined && h.ip === ip;
  // libvirt keeps the attributes as written (a MAC's case included) and writes them back in this order.
  const entry: DemoReservation = { ...(mac !== undefined ? { mac } : {}), ...(name !== undefined ? { name } : {}), ip: ip ?? '' };
  switch (command) {
    case 'modify': {
      const i = hosts.findIndex((h) => sameMac(h) || sameIp(h) || sameName(h));
      if (i < 0) return invalid(`couldn't locate an existing dhcp host entry with "mac='${mac ?? 'unknown'}'" "name='${shown(name)}'" "ip='${ip ?? 'unknown'}'" in network '${net.name}'`);
      hosts[i] = entry;
      break;
    }
    case 'add-first':
    case 'add-last': {
      if (hosts.some((h) => sameMac(h) || sameName(h) || sameIp(h))) {
        return invalid(`there is an existing dhcp host entry in network '${net.name}' that matches "<host mac='${mac ?? 'unknown'}' name='${shown(name)}' ip='${ip ?? 'unknown'}'/>"`);
      }
      if (command === 'add-first') hosts.unshift(entry);
      else hosts.push(entry);
      break;
    }
    case 'delete': {
      const i = hosts.findIndex((h) => (mac === undefined || h.mac === undefined || sameMac(h)) && (name === undefined || h.name === name) && (ip === undefined || h.ip === ip));
      if (i < 0) return invalid(`couldn't locate a matching dhcp host entry in network '${net.name}'`);
      hosts.splice(i, 1);
      break;
    }
  }
  return { isOk: true, reservations: hosts };
}
