/**
 * DHCP host reservations of a libvirt network (`<ip><dhcp><host mac= name= ip=/>`),
 * planned for `virsh net-update NET add|modify|delete ip-dhcp-host`. Pure.
 *
 * The rule for an address (https://libvirt.org/formatnetwork.html, "dhcp"/"host",
 * and dnsmasq(8) --dhcp-host): it must be inside the subnet of the network's
 * DHCP-serving `<ip>` and must not be that subnet's network, broadcast or the
 * host's own (gateway) address. It may lie outside the dynamic `<range>`s:
 * dnsmasq hands static addresses out anywhere in a subnet it serves, and keeping
 * reservations out of the range is the usual practice. Inside the range is
 * allowed too, since dnsmasq does not lease a reserved address to anyone else.
 */
import { VmdeskError } from '../errors.js';
import type { DhcpConfig, NetworkAddress, NetworkInfo } from './network-xml.js';

/** The `virsh net-update` command a reservation needs (`none`: already so). */
export type ReservationAction = 'add' | 'modify' | 'none';

/** A network, optionally with its current leases (an InventoryNetwork has them) to catch an address in use. */
export type NetworkWithLeases = NetworkInfo & { leases?: readonly { mac: string; ipAddress: string }[] };

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** A dotted quad as an unsigned 32-bit number; undefined unless it is one (no leading zeros, as inet_pton). */
function ipv4ToInt(s: string): number | undefined {
  if (!IPV4.test(s)) return undefined;
  return s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** libvirt's virNetworkIPDefPrefix: the prefix, else the class default of the address (A /8, B /16, C /24). */
function prefixOf(a: NetworkAddress, addr: number): number | undefined {
  if (a.prefix !== undefined) return a.prefix;
  const top = addr >>> 24;
  return top < 128 ? 8 : top < 192 ? 16 : top < 224 ? 24 : undefined;
}

/** True for a name dnsmasq and libvirt take as a DHCP host name: one DNS label (RFC 1123 section 2.1). */
export function isDnsLabel(name: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(name);
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** `<host mac='..' name='..' ip='..'/>` with each present attribute escaped. */
function hostElement(h: { mac?: string; name?: string; ip: string }): string {
  const attrs = [h.mac !== undefined ? ` mac='${escapeAttr(h.mac)}'` : '', h.name !== undefined ? ` name='${escapeAttr(h.name)}'` : '', ` ip='${escapeAttr(h.ip)}'`];
  return `<host${attrs.join('')}/>`;
}

/**
 * The `<ip>` whose host list `virsh net-update ... ip-dhcp-host` edits when no
 * --parent-index is given (libvirt's virNetworkIPDefByIndex(def, -1)): the
 * first one with DHCP ranges or hosts, else the first IPv4, else the first IPv6.
 */
function dhcpIp(net: NetworkInfo): NetworkAddress | undefined {
  return (
    net.addresses.find((a) => a.dhcp !== undefined && (a.dhcp.ranges.length > 0 || a.dhcp.hosts.length > 0)) ??
    net.addresses.find((a) => a.family === 'ipv4') ??
    net.addresses.find((a) => a.family === 'ipv6')
  );
}

function normalizeMac(mac: string): string {
  const m = mac.trim().toLowerCase();
  if (!MAC.test(m)) throw new VmdeskError('USAGE', `${JSON.stringify(mac)} is not a MAC address`, { context: { mac } });
  return m;
}

function hostsOf(a: NetworkAddress | undefined): DhcpConfig['hosts'] {
  return a?.dhcp?.hosts ?? [];
}

/** The subnet `ip` must be in, checked as described at the top of this file; returns the DHCP `<ip>` it belongs to. */
function checkAddress(net: NetworkInfo, ip: string, mac: string): NetworkAddress {
  const ctx = { network: net.name, ip, mac };
  const n = ipv4ToInt(ip);
  if (n === undefined) {
    throw new VmdeskError('DHCP_IP_INVALID', `${JSON.stringify(ip)} is not an IPv4 address`, { context: ctx, hint: 'a DHCP reservation takes an IPv4 address such as 192.168.122.50' });
  }
  const target = dhcpIp(net);
  const gw = target?.family === 'ipv4' ? ipv4ToInt(target.address) : undefined;
  const prefix = target && gw !== undefined ? prefixOf(target, gw) : undefined;
  if (target === undefined || gw === undefined || prefix === undefined) {
    throw new VmdeskError('DHCP_IP_INVALID', `the network ${net.name} has no IPv4 subnet to reserve ${ip} in`, {
      context: ctx,
      hint: `libvirt's DHCP reservations need an <ip address=... prefix=...> (IPv4) in the network; see virsh net-dumpxml ${net.name}`,
    });
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const base = (gw & mask) >>> 0;
  const broadcast = (base | (~mask >>> 0)) >>> 0;
  const subnet = `${intToIpv4(base)}/${prefix}`;
  const range = target.dhcp?.ranges.map((r) => `${r.start}-${r.end}`).join(', ');
  const hint = `pick an address in ${subnet} other than ${intToIpv4(base)}, ${target.address} and ${intToIpv4(broadcast)}${range ? ` (the DHCP range is ${range})` : ''}`;
  if (((n & mask) >>> 0) !== base) {
    throw new VmdeskError('DHCP_IP_INVALID', `${ip} is outside the subnet ${subnet} of the network ${net.name}`, { context: { ...ctx, subnet }, hint });
  }
  const own = net.addresses.some((a) => a.family === 'ipv4' && ipv4ToInt(a.address) === n);
  const what = own ? "the hypervisor's own address (the guests' gateway)" : prefix <= 30 && n === base ? 'the network address' : prefix <= 30 && n === broadcast ? 'the broadcast address' : undefined;
  if (what !== undefined) {
    throw new VmdeskError('DHCP_IP_INVALID', `${ip} is ${what} of the network ${net.name}`, { context: { ...ctx, subnet }, hint });
  }
  return target;
}

// Throws DHCP_IP_INVALID (see the rule at the top) or DHCP_IP_CONFLICT (reserved for, or leased to, another MAC).
/** What `vmdesk pin-ip` must do so `mac` always gets `ip` on `net`: add a host, modify the MAC's reservation, or nothing. */
export function planReservation(net: NetworkWithLeases, mac: string, ip: string, name?: string): { action: ReservationAction; hostXml: string } {
  const m = normalizeMac(mac);
  const target = checkAddress(net, ip.trim(), m);
  const addr = ip.trim();
  const all = net.addresses.flatMap(hostsOf);
  const taken = all.find((h) => h.ip === addr && h.mac !== m);
  if (taken) {
    throw new VmdeskError('DHCP_IP_CONFLICT', `${addr} is already reserved on the network ${net.name} for ${taken.mac ?? `the host name ${taken.name ?? '?'}`}${taken.name && taken.mac ? ` (${taken.name})` : ''}`, {
      context: { network: net.name, ip: addr, mac: m, reservedFor: taken.mac ?? taken.name },
      hint: `pick another address, or first remove that reservation (virsh net-update ${net.name} delete ip-dhcp-host "${hostElement(taken)}" --live --config)`,
    });
  }
  const leased = net.leases?.find((l) => l.ipAddress === addr && l.mac.toLowerCase() !== m);
  if (leased) {
    throw new VmdeskError('DHCP_IP_CONFLICT', `${addr} is currently leased on the network ${net.name} to ${leased.mac}`, {
      context: { network: net.name, ip: addr, mac: m, leasedTo: leased.mac },
      hint: 'pick an address no other machine holds: two guests would answer for the same address',
    });
  }
  // net-update matches an entry by MAC, IP *or* name, and refuses to add a name another entry has
  // (virNetworkDefUpdateIPDHCPHost): a name used elsewhere is left out rather than hit the wrong entry.
  const hasName = name !== undefined && isDnsLabel(name) && !all.some((h) => h.name === name && h.mac !== m);
  const hostXml = hostElement({ mac: m, ...(hasName ? { name } : {}), ip: addr });
  const existing = hostsOf(target).find((h) => h.mac === m);
  if (existing === undefined) return { action: 'add', hostXml };
  return { action: existing.ip === addr ? 'none' : 'modify', hostXml };
}

/** The exact `<host/>` to pass to `net-update ... delete ip-dhcp-host` for the reservation of `mac`; undefined when it has none. */
export function removalXml(net: NetworkInfo, mac: string): string | undefined {
  const m = normalizeMac(mac);
  const target = dhcpIp(net);
  const existing = hostsOf(target).find((h) => h.mac === m);
  // Every attribute given must match for a delete, so naming all three removes exactly this entry.
  return existing ? hostElement(existing) : undefined;
}

/** MAC (lower case) -> reserved IPv4 address, for `ls` and the dashboard; the first entry of a MAC wins, as in dnsmasq. */
export function pinnedIps(net: NetworkInfo): Map<string, string> {
  const pinned = new Map<string, string>();
  for (const a of net.addresses) {
    if (a.family !== 'ipv4') continue;
    for (const h of hostsOf(a)) if (h.mac !== undefined && !pinned.has(h.mac)) pinned.set(h.mac, h.ip);
  }
  return pinned;
}
