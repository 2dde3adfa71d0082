/**
 * Turning `HOST/VM` (or a bare `VM`) into a connected chain and a domain:
 * HOST is a host from vmdesk's config or any ssh destination; a bare VM name
 * is looked for on every configured host and must exist on exactly one.
 */
import { loadConfig, DEFAULT_LIBVIRT_URI, type HostConfig } from '../config/config.js';
import { VmdeskError } from '../errors.js';
import { readInventory, resolveDomain, type RemoteExec } from '../libvirt/remote.js';
import type { Inventory, InventoryDomain } from '../libvirt/inventory.js';
import { SshChain } from '../ssh/chain.js';
import { planHops } from '../ssh/hop-plan.js';
import type { HopSpec } from '../ssh/types.js';
import { choosePrompter } from './prompters.js';

export interface HostOptions {
  config?: string;
  sshConfig?: string;
  jump?: string;
  acceptNewHostKey?: boolean;
}

/** A hypervisor as the commands use it. */
export interface HostTarget {
  /** What the user calls it (config name or ssh destination). */
  name: string;
  dest: string;
  uri: string;
  jump?: string;
  sshConfig?: string;
}

/** A connected hypervisor: its hops and a chain to it. */
export interface ConnectedHost extends HostTarget {
  hops: HopSpec[];
  chain: SshChain;
  exec: RemoteExec;
}

export function hostTarget(name: string, opts: HostOptions): HostTarget {
  const cfg = loadConfig(opts.config);
  const known = cfg.hosts.find((h) => h.name === name);
  const base: HostConfig = known ?? { name, ssh: name, libvirtUri: cfg.defaults.libvirtUri ?? DEFAULT_LIBVIRT_URI };
  const t: HostTarget = { name, dest: base.ssh, uri: base.libvirtUri };
  const jump = opts.jump ?? base.jump;
  const sshConfig = opts.sshConfig ?? base.sshConfig;
  if (jump) t.jump = jump;
  if (sshConfig) t.sshConfig = sshConfig;
  return t;
}

export async function connectHost(t: HostTarget, opts: HostOptions): Promise<ConnectedHost> {
  const hops = await planHops(t.dest, { ...(t.sshConfig ? { configFile: t.sshConfig } : {}), ...(t.jump ? { jump: t.jump } : {}) });
  const prompter = choosePrompter();
  const chain = new SshChain(hops, { ...(prompter ? { prompter } : {}), acceptNewHostKey: opts.acceptNewHostKey ?? false });
  await chain.connect();
  return { ...t, hops, chain, exec: (c, o) => chain.exec(c, o) };
}

/** Split `HOST/VM` at the last '/' (libvirt forbids '/' in VM names). */
export function splitVmRef(ref: string): { host?: string; vm: string } {
  const i = ref.lastIndexOf('/');
  if (i < 0) return { vm: ref };
  const host = ref.slice(0, i);
  const vm = ref.slice(i + 1);
  if (!host || !vm) throw new VmdeskError('USAGE', `expected HOST/VM, got ${JSON.stringify(ref)}`, { hint: 'e.g. vmdesk vnc kvmhost/win2016' });
  return { host, vm };
}

/**
 * Resolve `HOST/VM` or `VM` to a connected host and the domain named VM
 * exactly (read live); from here on the commands use `domain.uuid` only. The
 * caller closes `host.chain`.
 */
export async function connectVm(ref: string, opts: HostOptions & { addresses?: boolean }): Promise<{ host: ConnectedHost; domain: InventoryDomain }> {
  const { host, vm } = splitVmRef(ref);
  if (host) {
    const h = await connectHost(hostTarget(host, opts), opts);
    try {
      const domain = await resolveDomain(h.exec, h.uri, vm, h.name, { addresses: opts.addresses ?? true });
      return { host: h, domain };
    } catch (err) {
      await h.chain.close();
      throw err;
    }
  }
  const cfg = loadConfig(opts.config);
  if (cfg.hosts.length === 0) {
    throw new VmdeskError('USAGE', `which host is ${JSON.stringify(vm)} on? write HOST/VM`, { hint: 'or name your hypervisors in ~/.config/vmdesk/config.yaml (see docs/config.md)' });
  }
  const found = await Promise.all(
    cfg.hosts.map(async (hc) => {
      const h = await connectHost(hostTarget(hc.name, opts), opts).catch(() => undefined);
      if (!h) return undefined;
      const inv: Inventory | undefined = await readInventory(h.exec, h.uri).catch(() => undefined);
      const d = inv?.domains.find((x) => x.name === vm);
      if (!d) {
        await h.chain.close();
        return undefined;
      }
      return { host: h, domain: d };
    }),
  );
  const hits = found.filter((x): x is { host: ConnectedHost; domain: InventoryDomain } => x !== undefined);
  if (hits.length === 1) return hits[0]!;
  await Promise.all(hits.map((x) => x.host.chain.close()));
  if (hits.length === 0) {
    throw new VmdeskError('VM_NOT_FOUND', `no VM named ${JSON.stringify(vm)} on any configured host (${cfg.hosts.map((h) => h.name).join(', ')})`, {
      context: { vm },
      hint: 'vmdesk ls HOST lists the VMs of a host',
    });
  }
  throw new VmdeskError('VM_AMBIGUOUS', `${JSON.stringify(vm)} exists on ${hits.map((x) => x.host.name).join(' and ')}`, {
    context: { vm, candidates: hits.map((x) => `${x.host.name}/${vm}`) },
    hint: `write one of: ${hits.map((x) => `${x.host.name}/${vm}`).join(', ')}`,
  });
}
