/**
 * From an inventory to the one thing a forward needs: where a VM's console
 * or RDP port is, as seen from the hypervisor. Pure. A console that listens
 * on 0.0.0.0 is still reached through the host's loopback, so the tunnel
 * never depends on the exposure it replaces.
 */
import { VmdeskError } from '../errors.js';
import type { ChannelTarget } from '../forward/types.js';
import type { Inventory, InventoryDomain, VmAddress } from './inventory.js';
import { shellWord } from './shell-quote.js';

/** Levenshtein distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** Up to three known names closest to `name` (case-insensitive), nearest first. */
export function closeNames(name: string, names: string[]): string[] {
  const lower = name.toLowerCase();
  return names
    .map((n) => ({ n, d: distance(lower, n.toLowerCase()), sub: n.toLowerCase().includes(lower) || lower.includes(n.toLowerCase()) }))
    .filter((x) => x.sub || x.d <= Math.max(2, Math.floor(name.length / 3)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map((x) => x.n);
}

/**
 * The domain whose name is exactly `name`; VM_NOT_FOUND with suggestions
 * otherwise. Never by ID or UUID (virsh's order): a text that is another VM's
 * UUID or ID is named in the hint, and the user writes that VM's name.
 */
export function findDomain(inv: Inventory, name: string, host: string): InventoryDomain {
  const exact = inv.domains.find((d) => d.name === name);
  if (exact) return exact;
  const names = inv.domains.map((d) => d.name).filter((n): n is string => n !== undefined);
  const byUuid = inv.domains.find((d) => d.uuid === name.trim().toLowerCase());
  const byId = /^\d+$/.test(name) ? inv.domains.find((d) => d.id === Number(name)) : undefined;
  const other = byUuid ?? byId;
  const close = closeNames(name, names);
  const ref = (n: string) => shellWord(`${host}/${n}`);
  const hint =
    other?.name !== undefined
      ? `${JSON.stringify(name)} is the ${byUuid ? 'UUID' : 'ID'} of ${JSON.stringify(other.name)}: vmdesk takes names only, write ${ref(other.name)}`
      : close.length
        ? `did you mean ${close.map((c) => JSON.stringify(c)).join(', ')}?`
        : `vmdesk ls ${host} lists its ${names.length} VMs`;
  throw new VmdeskError('VM_NOT_FOUND', `no VM named ${JSON.stringify(name)} on ${host}`, {
    context: { vm: name, host, ...(other?.name !== undefined ? { [byUuid ? 'uuidOf' : 'idOf']: other.name } : {}), ...(close.length ? { didYouMean: close } : {}) },
    hint,
  });
}

function requireRunning(d: InventoryDomain, host: string, what: string): void {
  if (d.state === 'running' || d.state === 'paused') return;
  throw new VmdeskError('VM_NOT_RUNNING', `${d.name} on ${host} is ${d.state}: it has no ${what}`, {
    context: { vm: d.name, host, state: d.state },
    hint: `start it with --start, or: virsh start ${d.uuid}`,
  });
}

/** Where the VM's VNC server is, from the hypervisor's point of view. */
export function vncTarget(d: InventoryDomain, host: string): ChannelTarget {
  const vnc = d.graphics.find((g) => g.type === 'vnc');
  if (!vnc) {
    const other = d.graphics.map((g) => g.type).join(', ');
    throw new VmdeskError('VNC_NOT_CONFIGURED', `${d.name} on ${host} has no VNC console${other ? ` (it has: ${other})` : ''}`, {
      context: { vm: d.name, host },
      hint: "add <graphics type='vnc' autoport='yes' listen='127.0.0.1'/> to its definition (virsh edit)",
    });
  }
  requireRunning(d, host, 'console');
  const socketListen = vnc.socket ?? vnc.listens.find((l) => l.type === 'socket' && l.socket)?.socket;
  if (socketListen) return { kind: 'unix', path: socketListen };
  if (vnc.port === undefined || vnc.port <= 0) {
    throw new VmdeskError('VNC_NOT_CONFIGURED', `${d.name} on ${host} is running but its VNC console has no port`, {
      context: { vm: d.name, host },
      hint: 'libvirt reports no port for this console; check `virsh domdisplay` on the host',
    });
  }
  const address = vnc.listens.find((l) => l.address)?.address;
  // A wildcard listener is reached on the host's own loopback; a specific address (loopback or not) as it is.
  const connectTo = !address || address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return { kind: 'tcp', host: connectTo, port: vnc.port };
}

/** The VNC display number (port - 5900), used to pick the local port like `vncviewer host:N` does. */
export function vncDisplay(target: ChannelTarget): number | undefined {
  return target.kind === 'tcp' && target.port >= 5900 ? target.port - 5900 : undefined;
}

const SOURCE_ORDER: Record<VmAddress['source'], number> = { lease: 0, neigh: 1, agent: 2 };

/** The guest's best address (IPv4 first, by source), or undefined when none is known. */
export function bestAddress(d: InventoryDomain): VmAddress | undefined {
  const v4 = d.addresses.filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a.ip)).sort((a, b) => SOURCE_ORDER[a.source] - SOURCE_ORDER[b.source]);
  return v4[0] ?? d.addresses[0];
}

/** The guest's best IPv4 address: DHCP lease first, then the neighbour table, then the guest agent. */
export function guestAddress(d: InventoryDomain, host: string, sourcesTried: string[]): VmAddress {
  const best = bestAddress(d);
  if (best) return best;
  requireRunning(d, host, 'IP address');
  const macs = d.interfaces.map((i) => i.mac).join(', ') || 'no NIC';
  throw new VmdeskError('VM_NO_IP', `no IP address found for ${d.name} on ${host} (MAC ${macs}; looked in ${sourcesTried.join(', ')})`, {
    context: { vm: d.name, host },
    hint: `pass --ip ADDR, or give it a fixed address with a DHCP reservation (vmdesk pin-ip ${host}/${d.name})`,
  });
}
