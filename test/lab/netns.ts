/**
 * The seed's network, made of network namespaces and veth pairs:
 *
 *   vmd-client 10.1.1.233 --- 10.1.1.1 vmd-jump 192.168.0.1 --- 192.168.0.2 vmd-host
 *
 * Every name starts with `vmd-`, so cleanup can delete whatever matches
 * without touching anything else on the machine.
 */
import { runChecked, runProcess } from './exec.js';
import { killPids } from './processes.js';

export const LAB_PREFIX = 'vmd-';

export const NAMESPACES = { client: 'vmd-client', jump: 'vmd-jump', host: 'vmd-host' } as const;
export type NodeName = keyof typeof NAMESPACES;

export const ADDRESSES = {
  client: '10.1.1.233',
  jumpOuter: '10.1.1.1',
  jumpInner: '192.168.0.1',
  host: '192.168.0.2',
} as const;

/** The two wires; each end's name is at most 15 characters (IFNAMSIZ). */
export const LINKS = {
  'client-jump': { a: { ns: NAMESPACES.client, dev: 'vmd-c0', cidr: `${ADDRESSES.client}/24` }, b: { ns: NAMESPACES.jump, dev: 'vmd-j0', cidr: `${ADDRESSES.jumpOuter}/24` } },
  'jump-host': { a: { ns: NAMESPACES.jump, dev: 'vmd-j1', cidr: `${ADDRESSES.jumpInner}/24` }, b: { ns: NAMESPACES.host, dev: 'vmd-h0', cidr: `${ADDRESSES.host}/24` } },
} as const;
export type LinkName = keyof typeof LINKS;

/** Namespaces whose names start with `vmd-` (ours, possibly left by a crashed run). */
export async function listLabNamespaces(): Promise<string[]> {
  const out = await runChecked(['ip', 'netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(LAB_PREFIX));
}

/** Pids of the processes living in namespace `ns`. */
export async function pidsIn(ns: string): Promise<number[]> {
  const r = await runProcess(['ip', 'netns', 'pids', ns]);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((s) => Number.parseInt(s, 10))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Kills every process in the lab namespaces, then deletes the namespaces and any stray `vmd-` link. */
export async function destroyTopology(): Promise<void> {
  const names = await listLabNamespaces();
  const pids = (await Promise.all(names.map(pidsIn))).flat();
  await killPids(pids);
  for (const ns of names) await runProcess(['ip', 'netns', 'delete', ns]);
  // A run that crashed between `ip link add` and moving the ends leaves them in our namespace.
  const links = await runProcess(['ip', '-o', 'link', 'show']);
  for (const m of links.stdout.matchAll(/^\d+:\s+(vmd-[^:@\s]+)/gm)) {
    if (m[1]) await runProcess(['ip', 'link', 'delete', m[1]]);
  }
}

/** Creates the three namespaces, the two veth pairs and their addresses; the jump host does not route. */
export async function createTopology(): Promise<void> {
  for (const ns of Object.values(NAMESPACES)) {
    await runChecked(['ip', 'netns', 'add', ns]);
    await runChecked(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  for (const { a, b } of Object.values(LINKS)) {
    await runChecked(['ip', 'link', 'add', a.dev, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.ns]);
    for (const end of [a, b]) {
      await runChecked(['ip', '-n', end.ns, 'addr', 'add', end.cidr, 'dev', end.dev]);
      await runChecked(['ip', '-n', end.ns, 'link', 'set', end.dev, 'up']);
    }
  }
  // The seed's premise: the jump host has two NICs but does not forward between them.
  await runChecked(['ip', 'netns', 'exec', NAMESPACES.jump, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=0']);
}

/** Takes one wire down (no FIN, no RST: packets just vanish) or back up. */
export async function setLinkUp(link: LinkName, up: boolean): Promise<void> {
  const { a, b } = LINKS[link];
  for (const end of [a, b]) await runChecked(['ip', '-n', end.ns, 'link', 'set', end.dev, up ? 'up' : 'down']);
}

/** `net.ipv4.ip_forward` inside a namespace, as the kernel reports it. */
export async function ipForwarding(ns: string): Promise<string> {
  return (await runChecked(['ip', 'netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/ip_forward'])).trim();
}
