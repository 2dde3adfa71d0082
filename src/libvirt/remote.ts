/**
 * libvirt over an SSH exec: the whole inventory in one round trip, and the
 * per-connection lookups of one VM's console or guest address. Every script
 * sent to the host is built from argv with quoteArg and parsed by /bin/sh: no
 * VM name can become a command. Needs only a way to run a script
 * (`RemoteExec`), so it does not depend on the ssh layer.
 */
import { VmdeskError, isVmdeskError } from '../errors.js';
import type { ChannelTarget, VmTarget } from '../forward/types.js';
import { asDomainUuid, asNetworkUuid, isUuid, parseDomstate, type DomainUuid, type NetworkUuid } from './domain-list.js';
import { parseDomainXml, type DomainInfo } from './domain-xml.js';
import { assembleInventory, addressesFor, type Inventory, type InventoryDomain, type InventoryState } from './inventory.js';
import { buildInventoryScript, newBoundary, parseInventoryOutput } from './inventory-script.js';
import { parseArpN, parseDhcpLeases, parseIpNeigh } from './leases.js';
import { parseNetworkXml, type NetworkInfo } from './network-xml.js';
import { commandLine } from './shell-quote.js';
import { domstateArgv, dumpxmlArgv, dumpxmlByNameArgv, netDhcpLeasesArgv, netDumpxmlArgv, netDumpxmlByNameArgv, startArgv } from './virsh-argv.js';
import { virshError } from './virsh-errors.js';
import { findDomain, guestAddress, vncTarget } from './vm-target.js';

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

/** `dumpxml` with --security-info (shows whether a console has a password), the plain form for a read-only user. */
async function dumpxmlText(exec: RemoteExec, argv: (securityInfo: boolean) => string[], ctx: Record<string, unknown>): Promise<{ xml: string; arePasswordsKnown: boolean }> {
  try {
    return { xml: await run(exec, argv(true), 'dumpxml', ctx), arePasswordsKnown: true };
  } catch (err) {
    if (isVmdeskError(err, 'VM_NOT_FOUND')) throw err;
    return { xml: await run(exec, argv(false), 'dumpxml', ctx), arePasswordsKnown: false };
  }
}

function gone(uuid: DomainUuid, found: string | undefined): VmdeskError {
  return new VmdeskError('VM_NOT_FOUND', `the VM with UUID ${uuid} is gone${found !== undefined ? ` (virsh found ${JSON.stringify(found)} instead)` : ''}`, {
    context: { vmUuid: uuid },
    hint: 'it was undefined meanwhile; list the host again (vmdesk ls HOST)',
  });
}

/** The domain XML of `uuid`, checked to be that domain's: virsh falls back to a name lookup when no UUID matches. */
async function dumpxmlOf(exec: RemoteExec, uri: string, uuid: DomainUuid, opts: { securityInfo: boolean }): Promise<{ info: DomainInfo; arePasswordsKnown: boolean }> {
  const ctx = { vmUuid: uuid };
  const r = opts.securityInfo
    ? await dumpxmlText(exec, (secure) => dumpxmlArgv(uri, uuid, { securityInfo: secure }), ctx)
    : { xml: await run(exec, dumpxmlArgv(uri, uuid), 'dumpxml', ctx), arePasswordsKnown: false };
  const info = parseDomainXml(r.xml);
  if (info.uuid !== uuid) throw gone(uuid, info.name);
  return { info, arePasswordsKnown: r.arePasswordsKnown };
}

/**
 * The network a NIC's `<source network='NAME'>` names (libvirt attaches it by
 * exact name), from `net-dumpxml` when virsh's UUID-then-name lookup found
 * that very network, else from the inventory's list.
 */
export async function resolveNetwork(exec: RemoteExec, uri: string, name: string): Promise<NetworkInfo & { uuid: NetworkUuid }> {
  const direct = await run(exec, netDumpxmlByNameArgv(uri, name), 'net-dumpxml', { network: name }).then(parseNetworkXml, () => undefined);
  if (direct?.name === name) return { ...direct, uuid: asNetworkUuid(direct.uuid) };
  const net = (await readInventory(exec, uri)).networks.find((n) => n.name === name);
  if (!net) {
    throw new VmdeskError('LIBVIRT_COMMAND_FAILED', `no libvirt network named ${JSON.stringify(name)}`, { context: { network: name }, hint: 'virsh net-list --all lists the networks of the host' });
  }
  const uuid = asNetworkUuid(net.uuid);
  const info = parseNetworkXml(await run(exec, netDumpxmlArgv(uri, uuid), 'net-dumpxml', { network: name }));
  return { ...info, uuid };
}

/** State (domstate) and, for a running domain with `addresses`, guest addresses, all looked up by UUID. */
async function completeDomain(exec: RemoteExec, uri: string, info: DomainInfo, arePasswordsKnown: boolean, opts: { addresses: boolean }): Promise<InventoryDomain> {
  const uuid = asDomainUuid(info.uuid);
  const nets = [...new Set(info.interfaces.filter((i) => i.type === 'network' && i.source).map((i) => i.source!))];
  const readAddresses = async () => {
    const [leases, neigh] = await Promise.all([
      Promise.all(nets.map((n) => resolveNetwork(exec, uri, n).then((net) => run(exec, netDhcpLeasesArgv(uri, net.uuid), 'net-dhcp-leases', { network: n })).then(parseDhcpLeases, () => []))),
      // The seed's `arp -n`, done right: the host's neighbour table, /proc/net/arp where `ip` is missing.
      exec(commandLine(['ip', 'neigh', 'show'])).then(async (r) =>
        r.code === 0 ? parseIpNeigh(r.stdout.toString('utf8')) : parseArpN((await exec(commandLine(['cat', '/proc/net/arp']))).stdout.toString('utf8')),
      ),
    ]);
    const networks = nets.map((name, i) => ({ name, uuid: '', addresses: [], leases: leases[i] ?? [] }));
    return addressesFor(info.interfaces, networks, neigh, undefined);
  };
  // A live XML has an id only while the domain runs: only then can it have addresses.
  const [stateText, addresses] = await Promise.all([run(exec, domstateArgv(uri, uuid), 'domstate', { vm: info.name }), opts.addresses && info.id !== undefined ? readAddresses() : []]);
  const d: InventoryDomain = { uuid, name: info.name, state: stateOf(stateText), graphics: info.graphics, interfaces: info.interfaces, arePasswordsKnown, addresses };
  if (info.id !== undefined) d.id = info.id;
  return d;
}

/** One domain's state, consoles, NICs and (with `addresses`) guest addresses, looked up by its UUID. */
export async function readDomain(exec: RemoteExec, uri: string, uuid: DomainUuid, opts: { addresses: boolean }): Promise<InventoryDomain> {
  const { info, arePasswordsKnown } = await dumpxmlOf(exec, uri, uuid, { securityInfo: true });
  return completeDomain(exec, uri, info, arePasswordsKnown, opts);
}

/**
 * The domain whose name is exactly `name`, and from then on its UUID. One
 * round trip when `dumpxml` of the name finds that very domain; virsh tries
 * the text as an ID and a UUID first, so when it finds another (`1` is the ID
 * of a running VM, a name is another VM's UUID) or none, the inventory
 * decides by exact name, and no match is VM_NOT_FOUND (vm-target.ts findDomain).
 */
export async function resolveDomain(exec: RemoteExec, uri: string, name: string, host: string, opts: { addresses: boolean }): Promise<InventoryDomain> {
  const direct = await dumpxmlText(exec, (secure) => dumpxmlByNameArgv(uri, name, { securityInfo: secure }), { vm: name }).catch((err: unknown) => {
    if (isVmdeskError(err, 'VM_NOT_FOUND')) return undefined;
    throw err;
  });
  const info = direct && parseDomainXml(direct.xml);
  if (direct && info?.name === name) return completeDomain(exec, uri, info, direct.arePasswordsKnown, opts);
  return findDomain(await readInventory(exec, uri), name, host);
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
export async function startDomain(exec: RemoteExec, uri: string, uuid: DomainUuid): Promise<void> {
  await run(exec, startArgv(uri, uuid), 'start', { vmUuid: uuid });
}

/**
 * Where a VM's VNC console is right now, and the VM's name, from one `virsh
 * dumpxml` (one virsh process on the host, the lookup every console
 * connection waits for): a running domain's live XML has an `id` and the
 * console's current port.
 */
export async function resolveVncConsole(exec: RemoteExec, uri: string, uuid: DomainUuid, host: string): Promise<{ target: ChannelTarget; name: string }> {
  const { info } = await dumpxmlOf(exec, uri, uuid, { securityInfo: false });
  const d: InventoryDomain = { uuid, name: info.name, state: info.id !== undefined ? 'running' : 'shut off', graphics: info.graphics, interfaces: info.interfaces, arePasswordsKnown: false, addresses: [] };
  return { target: vncTarget(d, host), name: info.name };
}

/** Where a VM target points right now, looked up on the hypervisor, and the VM's name there (what its events call it). */
export async function resolveVmEndpoint(exec: RemoteExec, t: VmTarget, host: string): Promise<{ target: ChannelTarget; name: string }> {
  if (t.service === 'rdp' && t.ip) return { target: { kind: 'tcp', host: t.ip, port: t.port ?? 3389 }, name: t.vm };
  // A target that reached the agent without a UUID (an older client) must not become a by-name lookup.
  if (typeof t.uuid !== 'string' || !isUuid(t.uuid)) throw new VmdeskError('VM_NOT_FOUND', `the forward to ${t.vm} names no VM UUID`, { context: { vm: t.vm, host }, hint: 'open the forward again (vmdesk stop, then vnc/rdp HOST/VM)' });
  if (t.service === 'vnc') return resolveVncConsole(exec, t.uri, t.uuid, host);
  const d = await readDomain(exec, t.uri, t.uuid, { addresses: true });
  const a = guestAddress(d, host, ['DHCP leases', 'neighbour table']);
  return { target: { kind: 'tcp', host: a.ip, port: t.port ?? 3389 }, name: d.name ?? t.vm };
}

/** Where a VM target points right now, looked up on the hypervisor. */
export async function resolveVmTarget(exec: RemoteExec, t: VmTarget, host: string): Promise<ChannelTarget> {
  return (await resolveVmEndpoint(exec, t, host)).target;
}
