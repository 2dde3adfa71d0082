/**
 * Finding a VM's IP address from its MAC, the way the seed did by hand:
 * libvirt's DHCP leases (`virsh net-dhcp-leases NET`), `virsh domifaddr`, and
 * the hypervisor's neighbour table (`ip neigh`, `arp -n`, /proc/net/arp).
 * Pure parsers of those commands' text output; lines they do not recognise
 * (headers, rules, blanks) are skipped, never guessed at.
 */

export interface DhcpLease {
  /** `YYYY-MM-DD HH:MM:SS` in the hypervisor's local time, as virsh prints it. */
  expiry: string;
  mac: string;
  protocol: 'ipv4' | 'ipv6' | string;
  /** The address without its `/prefix`. */
  ipAddress: string;
  prefix: number;
  hostname?: string;
  clientId?: string;
}

export interface InterfaceAddress {
  /** vnetN for lease/arp sources; the guest's own name (may contain spaces) for the agent source. */
  name: string;
  mac?: string;
  protocol: 'ipv4' | 'ipv6' | string;
  ipAddress: string;
  prefix?: number;
}

export interface Neighbour {
  ip: string;
  dev: string;
  mac?: string;
  /** REACHABLE, STALE, DELAY, PROBE, FAILED, INCOMPLETE, PERMANENT, NOARP, ...; arp -n's flags mapped onto these. */
  state: string;
  isRouter?: boolean;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIME = /^\d{2}:\d{2}:\d{2}$/;

function splitAddress(s: string): { ipAddress: string; prefix?: number } {
  const slash = s.lastIndexOf('/');
  if (slash < 0) return { ipAddress: s };
  const prefix = Number(s.slice(slash + 1));
  return Number.isInteger(prefix) ? { ipAddress: s.slice(0, slash), prefix } : { ipAddress: s };
}

function dashToUndefined(s: string | undefined): string | undefined {
  return s === undefined || s === '-' || s === '' ? undefined : s;
}

/**
 * `virsh net-dhcp-leases NET`:
 * ` 2026-11-26 13:53:51   52:54:00:fc:b9:e6   ipv4   192.168.122.217/24   win2016   01:52:54:00:fc:b9:e6`
 * (hostname and client id are `-` when unknown; dnsmasq never hands out hostnames with spaces).
 */
export function parseDhcpLeases(text: string): DhcpLease[] {
  const leases: DhcpLease[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    const [date, time, mac, protocol, address, hostname, clientId] = t;
    if (t.length < 5 || !date || !time || !mac || !protocol || !address) continue;
    if (!DATE.test(date) || !TIME.test(time) || !MAC.test(mac)) continue;
    const { ipAddress, prefix } = splitAddress(address);
    const lease: DhcpLease = { expiry: `${date} ${time}`, mac: mac.toLowerCase(), protocol, ipAddress, prefix: prefix ?? (protocol === 'ipv6' ? 128 : 32) };
    const h = dashToUndefined(hostname);
    if (h !== undefined) lease.hostname = h;
    const c = dashToUndefined(clientId);
    if (c !== undefined) lease.clientId = c;
    leases.push(lease);
  }
  return leases;
}

/**
 * `virsh domifaddr DOM [--source lease|arp|agent]`:
 * ` vnet0   52:54:00:fc:b9:e6   ipv4   192.168.122.217/24`; further addresses
 * of the same interface print `-` for name and MAC. Read from the right,
 * because an agent-reported name may contain spaces (`Ethernet 2`).
 */
export function parseDomifaddr(text: string): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  let last: { name: string; mac?: string } | undefined;
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t.length < 4) continue;
    const address = t[t.length - 1] ?? '';
    const protocol = t[t.length - 2] ?? '';
    const mac = t[t.length - 3] ?? '';
    const name = t.slice(0, -3).join(' ');
    if (!/^ipv[46]$/.test(protocol)) continue;
    if (mac !== '-' && !MAC.test(mac) && mac !== '00:00:00:00:00:00') continue;
    const current = name === '-' && mac === '-' && last ? last : { name, ...(mac !== '-' ? { mac: mac.toLowerCase() } : {}) };
    last = current;
    const { ipAddress, prefix } = splitAddress(address);
    out.push({ ...current, protocol, ipAddress, ...(prefix !== undefined ? { prefix } : {}) });
  }
  return out;
}

/** Linux `ip neigh show`: `IP dev DEV [lladdr MAC] [router] [proxy] STATE...`. */
export function parseIpNeigh(text: string): Neighbour[] {
  const out: Neighbour[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    const ip = t[0];
    if (!ip || !/^[0-9a-f.:]+$/i.test(ip) || !/[.:]/.test(ip)) continue;
    let dev: string | undefined;
    let mac: string | undefined;
    let isRouter = false;
    const states: string[] = [];
    for (let i = 1; i < t.length; i++) {
      const w = t[i] ?? '';
      if (w === 'dev') dev = t[++i];
      else if (w === 'lladdr') mac = t[++i]?.toLowerCase();
      else if (w === 'router') isRouter = true;
      else if (/^[A-Z_]+$/.test(w)) states.push(w);
    }
    if (dev === undefined) continue;
    out.push({ ip, dev, ...(mac !== undefined ? { mac } : {}), state: states.join(' ') || 'NONE', ...(isRouter ? { isRouter } : {}) });
  }
  return out;
}

function arpFlagsState(flags: number): string {
  // ATF_COM 0x02: completed entry; ATF_PERM 0x04: permanent (linux/if_arp.h).
  if (flags & 0x04) return 'PERMANENT';
  if (flags & 0x02) return 'REACHABLE';
  return 'INCOMPLETE';
}

/**
 * The neighbour table from a host without `ip`: net-tools `arp -n` (the
 * seed's command), busybox `arp -n`, or the raw /proc/net/arp.
 */
export function parseArpN(text: string): Neighbour[] {
  const out: Neighbour[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    // busybox: `? (192.168.122.217) at 52:54:00:fc:b9:e6 [ether]  on virbr0`, or `at <incomplete>`.
    const bb = /^\S+ \(([^)]+)\) at (\S+)(?: \[\w+\])?(?: PERM)?\s+on (\S+)/.exec(trimmed);
    if (bb?.[1] && bb[2] && bb[3]) {
      const isComplete = MAC.test(bb[2]);
      out.push({ ip: bb[1], dev: bb[3], ...(isComplete ? { mac: bb[2].toLowerCase() } : {}), state: !isComplete ? 'INCOMPLETE' : / PERM\b/.test(trimmed) ? 'PERMANENT' : 'REACHABLE' });
      continue;
    }
    const t = trimmed.split(/\s+/);
    // /proc/net/arp: `IP  0x1  0x2  MAC  *  DEV`
    if (t.length === 6 && /^0x[0-9a-f]+$/i.test(t[1] ?? '') && /^0x[0-9a-f]+$/i.test(t[2] ?? '')) {
      const flags = Number.parseInt(t[2] ?? '0', 16);
      const mac = (t[3] ?? '').toLowerCase();
      const hasMac = MAC.test(mac) && mac !== '00:00:00:00:00:00';
      out.push({ ip: t[0] ?? '', dev: t[5] ?? '', ...(hasMac ? { mac } : {}), state: arpFlagsState(flags) });
      continue;
    }
    // net-tools: `IP  ether  MAC  C  [mask]  DEV`, or `IP  (incomplete)  DEV`.
    const ip = t[0] ?? '';
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) continue;
    const dev = t[t.length - 1] ?? '';
    if (t[1] === '(incomplete)') {
      out.push({ ip, dev, state: 'INCOMPLETE' });
      continue;
    }
    const mac = t[2]?.toLowerCase();
    if (!mac || !MAC.test(mac)) continue;
    const flags = t[3] ?? '';
    out.push({ ip, dev, mac, state: flags.includes('M') ? 'PERMANENT' : 'REACHABLE' });
  }
  return out;
}
