/**
 * libvirt over an SSH exec: the whole inventory in one round trip, and the
 * per-connection lookups of one VM's console or guest address. Every script
 * sent to the host is built from argv with quoteArg and parsed by /bin/sh: no
 * VM name can become a command. Needs only a way to run a script
 * (`RemoteExec`), so it does not depend on the ssh layer.
 */
import { VmdeskError } from '../errors.js';
import type { ChannelTarget, VmTarget } from '../forward/types.js';
import { parseDomstate } from './domain-list.js';
import { parseDomainXml } from './domain-xml.js';
import { assembleInventory, addressesFor, type Inventory, type InventoryDomain, type InventoryState } from './inventory.js';
import { buildInventoryScript, newBoundary, parseInventoryOutput } from './inventory-script.js';
import { parseArpN, parseDhcpLeases, parseIpNeigh } from './leases.js';
import { commandLine } from './shell-quote.js';
import { domstateArgv, dumpxmlArgv, netDhcpLeasesArgv, startArgv } from './virsh-argv.js';
import { virshError } from './virsh-errors.js';
import { guestAddress, vncTarget } from './vm-target.js';

/**
 * Runs a POSIX sh script on the hypervisor, parsed by its `/bin/sh` whatever the SSH user's login shell (SshChain.exec
 * sends a fixed exec string and the script on stdin), with `stdin` as the script's standard input; resolves with the
 * script's exit status and output, byte for byte.
 */
export type RemoteExec = (script: string, opts?: { stdin?: string | Buffer }) => Promise<{ code: number | null; stdout: Buffer; stderr: Buffer }>;

/** Read every domain, network, lease and neighbour of the hypervisor in one exec. */
export async function readInventory(exec: RemoteExec, uri: string): Promise<Inventory> {
  const boundary = newBoundary();
  const script = buildInventoryScript(uri, boundary);
  const r = await exec(script);
  return assembleInventory(parseInventoryOutput(r.stdout.toString('utf8'), boundary));
}

/** Run one argv on the host; a non-zero exit becomes the classified virsh error. */
export async function run(exec: RemoteExec, argv: string[], what: string, context: Record<string, unknown>): Promise<string> {
  const r = await exec(commandLine(argv));
  if (r.code !== 0) throw virshError(what, { exitCode: r.code, stderr: r.stderr.toString('utf8') }, context);
  return r.stdout.toString('utf8');
}

function stateOf(text: string): InventoryState {
  const s = parseDomstate(text).state;
  return s === 'running' || s === 'paused' || s === 'shut off' ? s : s === '' ? 'unknown' : 'other';
}

/** One domain's state, consoles, NICs and (with `addresses`) guest addresses, in parallel execs. */
export async function readDomain(exec: RemoteExec, uri: string, vm: string, opts: { addresses: boolean }): Promise<InventoryDomain> {
  const ctx = { vm };
  const [stateText, xml] = await Promise.all([
    run(exec, domstateArgv(uri, vm), 'domstate', ctx),
    // --security-info shows whether a console has a password; a read-only user gets the plain form.
    run(exec, dumpxmlArgv(uri, vm, { securityInfo: true }), 'dumpxml', ctx).catch(() => run(exec, dumpxmlArgv(uri, vm), 'dumpxml', ctx)),
  ]);
  const info = parseDomainXml(xml);
  const d: InventoryDomain = { uuid: info.uuid, name: info.name, state: stateOf(stateText), graphics: info.graphics, interfaces: info.interfaces, arePasswordsKnown: true, addresses: [] };
  if (info.id !== undefined) d.id = info.id;
  if (opts.addresses && d.state === 'running') {
    const nets = [...new Set(info.interfaces.filter((i) => i.type === 'network' && i.source).map((i) => i.source!))];
    const [leases, neigh] = await Promise.all([
      Promise.all(nets.map((n) => run(exec, netDhcpLeasesArgv(uri, n), 'net-dhcp-leases', { network: n }).then(parseDhcpLeases, () => []))),
      // The seed's `arp -n`, done right: the host's neighbour table, /proc/net/arp where `ip` is missing.
      exec(commandLine(['ip', 'neigh', 'show'])).then(async (r) =>
        r.code === 0 ? parseIpNeigh(r.stdout.toString('utf8')) : parseArpN((await exec(commandLine(['cat', '/proc/net/arp']))).stdout.toString('utf8')),
      ),
    ]);
    const networks = nets.map((name, i) => ({ name, uuid: '', addresses: [], leases: leases[i] ?? [] }));
    d.addresses = addressesFor(info.interfaces, networks, neigh, undefined);
  }
  return d;
}

/**
 * A unix-socket console is only usable if the SSH user may open it (QEMU
 * creates them root-only unless told otherwise): check before promising a forward.
 */
export async function checkSocketAccess(exec: RemoteExec, path: string, host: string, vm: string): Promise<void> {
  const r = await exec(`${commandLine(['test', '-w', path])} && ${commandLine(['test', '-r', path])}`);
  if (r.code === 0) return;
  throw new VmdeskError('VNC_SOCKET_DENIED', `the VNC console of ${vm} on ${host} is the unix socket ${path}, which the SSH user may not open`, {
    context: { vm, host, path },
    hint: "give the SSH user access to the socket and its directory, or make the console listen on TCP 127.0.0.1 (<graphics type='vnc' listen='127.0.0.1' autoport='yes'/>)",
  });
}

/** Start a shut-off domain (`--start`). */
export async function startDomain(exec: RemoteExec, uri: string, vm: string): Promise<void> {
  await run(exec, startArgv(uri, vm), 'start', { vm });
}

/**
 * Where a VM's VNC console is right now, from one `virsh dumpxml` (one virsh
 * process on the host, the lookup every console connection waits for): a
 * running domain's live XML has an `id` and the console's current port.
 */
export async function resolveVncTarget(exec: RemoteExec, uri: string, vm: string, host: string): Promise<ChannelTarget> {
  const info = parseDomainXml(await run(exec, dumpxmlArgv(uri, vm), 'dumpxml', { vm }));
  const d: InventoryDomain = { uuid: info.uuid, name: info.name, state: info.id !== undefined ? 'running' : 'shut off', graphics: info.graphics, interfaces: info.interfaces, arePasswordsKnown: false, addresses: [] };
  return vncTarget(d, host);
}

/** Where a VM target points right now, looked up on the hypervisor. */
export async function resolveVmTarget(exec: RemoteExec, t: VmTarget, host: string): Promise<ChannelTarget> {
  if (t.service === 'rdp' && t.ip) return { kind: 'tcp', host: t.ip, port: t.port ?? 3389 };
  if (t.service === 'vnc') return resolveVncTarget(exec, t.uri, t.vm, host);
  const d = await readDomain(exec, t.uri, t.vm, { addresses: true });
  const a = guestAddress(d, host, ['DHCP leases', 'neighbour table']);
  return { kind: 'tcp', host: a.ip, port: t.port ?? 3389 };
}
