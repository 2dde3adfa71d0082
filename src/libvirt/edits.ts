/**
 * Changes to a hypervisor's libvirt definitions, made only through libvirt
 * (`virsh define`, `virsh net-update`), never by editing /etc/libvirt:
 * a console's listen address (`vnc-listen`, `audit --fix`) and DHCP host
 * reservations (`pin-ip`). Each change saves what it replaces first, is one
 * atomic libvirt call, and is read back afterwards. Secrets (the domain XML
 * carries the VNC password) travel as the scripts' standard input, inside the
 * script on the SSH channel, never on a command line.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmdeskError } from '../errors.js';
import { parseDomstate, type DomainUuid, type NetworkUuid } from './domain-list.js';
import { parseDomainXml } from './domain-xml.js';
import { planReservation, removalXml } from './dhcp-hosts.js';
import { parseDhcpLeases } from './leases.js';
import { readDomain, resolveNetwork, run, type RemoteExec } from './remote.js';
import { commandLine, quoteArg } from './shell-quote.js';
import { setGraphicsListen } from './graphics-edit.js';
import { defineArgv, destroyArgv, domstateArgv, dumpxmlArgv, netDhcpLeasesArgv, netInfoArgv, netUpdateDhcpHostArgv, shutdownArgv, startArgv } from './virsh-argv.js';
import { virshError } from './virsh-errors.js';

export interface ListenChangeOptions {
  /** Restart a running VM so the new address takes effect (clean shutdown, bounded wait, start). */
  restart: boolean;
  /** Destroy the VM when the clean shutdown does not finish in time. */
  force: boolean;
  shutdownTimeoutMs?: number;
  /** Asked when the shutdown timed out and `force` is off; false or absent: fail with VM_SHUTDOWN_TIMEOUT. */
  confirmDestroy?: () => Promise<boolean>;
  progress?: (line: string) => void;
}

export interface ListenChange {
  vm: string;
  uuid: DomainUuid;
  address: string;
  /** The listen addresses of the definition before the change. */
  before: string[];
  isChanged: boolean;
  /** Where the previous definition was saved on the host (only when something changed). */
  backupPath?: string;
  /** The previous definition's text, for a local copy (--backup-dir). */
  backupXml?: string;
  isRunning: boolean;
  /** The running VM still listens somewhere else (the definition applies at its next start). */
  isLiveStale: boolean;
  isRestarted: boolean;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 60_000;

function stamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Where backups of definitions go on the host, under the SSH user's home. */
export const BACKUP_DIR = '.local/state/vmdesk/backups';

/**
 * A backup's file name: the domain's UUID, the time to the second and 32 random bits, so two backups of one VM in
 * the same second get two names.
 */
export function backupFileName(uuid: string, now = new Date(), random = randomBytes(4)): string {
  return `${uuid.replace(/[^0-9a-f-]/gi, '')}-${stamp(now)}-${random.toString('hex')}.xml`;
}

/**
 * The sh script that writes stdin to a new 0600 file `fileName` in BACKUP_DIR and prints its path. `set -C`
 * (noclobber, XCU 2.7.2) makes the write fail rather than replace a file of that name.
 */
export function backupScript(fileName: string): string {
  return `umask 077 && d="\${HOME:-/tmp}/${BACKUP_DIR}" && mkdir -p "$d" && f="$d"/${quoteArg(fileName)} && set -C && cat > "$f" && printf '%s\\n' "$f"`;
}

/** The sh script that writes stdin to a private temporary file, runs `line` (where `"$f"` names the file), removes it and exits with `line`'s status. */
export function withTempFileScript(line: string): string {
  return `umask 077 && f=$(mktemp) || exit 70; cat > "$f"; ${line}; rc=$?; rm -f "$f"; exit $rc`;
}

/** Writes `text` (from stdin) to a new 0600 file under BACKUP_DIR on the host; returns its path. */
async function saveBackup(exec: RemoteExec, uuid: string, text: string, vm: string): Promise<string> {
  const r = await exec(backupScript(backupFileName(uuid)), { stdin: text });
  const path = r.stdout.toString('utf8').trim();
  if (r.code !== 0 || !path) {
    throw new VmdeskError('LIBVIRT_COMMAND_FAILED', `could not save a backup of ${vm}'s definition on the host: ${r.stderr.toString('utf8').trim() || `exit ${r.code}`}`, {
      context: { vm },
      hint: 'nothing was changed; check that the SSH user has a writable home directory',
    });
  }
  return path;
}

/** `virsh define` from stdin through a private temporary file, removed whatever happens. */
async function define(exec: RemoteExec, uri: string, xml: string, vm: string, backupPath: string): Promise<void> {
  const argv = defineArgv(uri, '"$f"');
  // "$f" must stay a shell expansion: quote every word but the file name.
  const line = argv.map((a) => (a === '"$f"' ? a : quoteArg(a))).join(' ');
  const r = await exec(withTempFileScript(line), { stdin: xml });
  if (r.code !== 0) {
    const err = virshError('define', { exitCode: r.code, stderr: r.stderr.toString('utf8') }, { vm });
    throw new VmdeskError(err.code, `${err.message} (nothing was changed)`, {
      cause: err,
      context: { vm, backup: backupPath },
      hint: `the definition is as it was (a copy is in ${backupPath} on the host); libvirt's reason is above`,
    });
  }
}

async function stateOf(exec: RemoteExec, uri: string, uuid: DomainUuid, vm: string): Promise<string> {
  return parseDomstate(await run(exec, domstateArgv(uri, uuid), 'domstate', { vm })).state;
}

/** Clean shutdown, bounded wait, then destroy only with consent; then start: each by the UUID changeListen checked. */
async function restartDomain(exec: RemoteExec, uri: string, uuid: DomainUuid, vm: string, opts: ListenChangeOptions): Promise<void> {
  const progress = opts.progress ?? (() => {});
  const timeoutMs = opts.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  progress(`shutting ${vm} down (waiting up to ${Math.round(timeoutMs / 1000)} s)`);
  await run(exec, shutdownArgv(uri, uuid), 'shutdown', { vm });
  const deadline = Date.now() + timeoutMs;
  let state = await stateOf(exec, uri, uuid, vm);
  while (state !== 'shut off' && Date.now() < deadline) {
    await sleep(1000);
    state = await stateOf(exec, uri, uuid, vm);
  }
  if (state !== 'shut off') {
    const mayDestroy = opts.force || (opts.confirmDestroy ? await opts.confirmDestroy() : false);
    if (!mayDestroy) {
      throw new VmdeskError('VM_SHUTDOWN_TIMEOUT', `${vm} did not shut down within ${Math.round(timeoutMs / 1000)} s (it is ${state}); its new definition applies at its next start`, {
        context: { vm },
        hint: 'add --force to power it off (like pulling the plug), or shut the guest down from inside and run `vmdesk vnc --start` later',
      });
    }
    progress(`powering ${vm} off (virsh destroy)`);
    await run(exec, destroyArgv(uri, uuid), 'destroy', { vm });
  }
  progress(`starting ${vm}`);
  await run(exec, startArgv(uri, uuid), 'start', { vm });
}

function listensOf(xml: string): string[] {
  const info = parseDomainXml(xml);
  return info.graphics.flatMap((g) => g.listens.map((l) => l.address ?? l.socket ?? l.network ?? l.type));
}

/** The persistent definition of `uuid`; refused unless it is that domain's (virsh falls back to a name lookup for an unknown UUID). */
async function inactiveXml(exec: RemoteExec, uri: string, uuid: DomainUuid, opts: { securityInfo: boolean }): Promise<{ xml: string; name: string }> {
  const xml = await run(exec, dumpxmlArgv(uri, uuid, { inactive: true, ...opts }), 'dumpxml', { vmUuid: uuid });
  const info = parseDomainXml(xml);
  if (info.uuid !== uuid) {
    throw new VmdeskError('VM_NOT_FOUND', `the VM with UUID ${uuid} is gone (virsh found ${JSON.stringify(info.name)} instead); nothing was changed`, {
      context: { vmUuid: uuid, found: info.name },
      hint: 'it was undefined meanwhile; list the host again (vmdesk ls HOST)',
    });
  }
  return { xml, name: info.name };
}

/**
 * Point every VNC/SPICE console of the domain `uuid` at `address`: save the
 * inactive definition (with its secrets) on the host, edit only its
 * <graphics>, `virsh define` it, read it back. The definition that is
 * changed is the one read by that UUID and checked to carry it; `virsh
 * define` replaces the domain its `<uuid>` names. A running VM keeps
 * listening where it did until it restarts (`restart`).
 */
export async function changeListen(exec: RemoteExec, uri: string, uuid: DomainUuid, address: string, opts: ListenChangeOptions): Promise<ListenChange> {
  const { xml, name: vm } = await inactiveXml(exec, uri, uuid, { securityInfo: true });
  const edit = setGraphicsListen(xml, address);
  const live = await readDomain(exec, uri, uuid, { addresses: false });
  const isRunning = live.state === 'running' || live.state === 'paused';
  const liveListens = live.graphics.filter((g) => g.type === 'vnc' || g.type === 'spice').flatMap((g) => g.listens.map((l) => l.address ?? ''));
  const isLiveStale = isRunning && liveListens.some((a) => a !== address);
  const result: ListenChange = { vm, uuid, address, before: edit.before, isChanged: edit.isChanged, isRunning, isLiveStale, isRestarted: false };
  if (edit.isChanged) {
    result.backupPath = await saveBackup(exec, uuid, xml, vm);
    result.backupXml = xml;
    await define(exec, uri, edit.xml, vm, result.backupPath);
    const after = listensOf((await inactiveXml(exec, uri, uuid, { securityInfo: false })).xml);
    if (!after.every((a) => a === address)) {
      throw new VmdeskError('LIBVIRT_COMMAND_FAILED', `libvirt accepted the new definition of ${vm} but it listens on ${after.join(', ')}`, {
        context: { vm, backup: result.backupPath },
        hint: `the previous definition is saved in ${result.backupPath} on the host (virsh define it to go back)`,
      });
    }
  }
  if (opts.restart && isLiveStale) {
    await restartDomain(exec, uri, uuid, vm, opts);
    result.isRestarted = true;
    result.isLiveStale = false;
  }
  return result;
}

export interface PinOptions {
  ip?: string;
  network?: string;
  remove: boolean;
}

export interface PinResult {
  vm: string;
  network: string;
  mac: string;
  ip?: string;
  action: 'add' | 'modify' | 'delete' | 'none';
  /** Whether the running network was changed too (else only its definition; it applies when the network restarts). */
  isLive: boolean;
}

async function isNetworkActive(exec: RemoteExec, uri: string, uuid: NetworkUuid, network: string): Promise<boolean> {
  const text = await run(exec, netInfoArgv(uri, uuid), 'net-info', { network });
  return /^Active:\s+yes\s*$/m.test(text);
}

/** Add (or with `remove`, delete) the DHCP host reservation of the NIC of the domain `uuid` on a libvirt network. */
export async function pinIp(exec: RemoteExec, uri: string, uuid: DomainUuid, host: string, opts: PinOptions): Promise<PinResult> {
  const d = await readDomain(exec, uri, uuid, { addresses: true });
  const name = d.name ?? uuid;
  const nics = d.interfaces.filter((i) => i.type === 'network' && i.source && (!opts.network || i.source === opts.network));
  const nic = nics[0];
  if (!nic?.source) {
    throw new VmdeskError('VM_NO_NETWORK', `${name} on ${host} has no NIC on ${opts.network ? `the libvirt network ${opts.network}` : 'a libvirt network'}`, {
      context: { vm: name, host },
      hint: 'DHCP reservations live in a libvirt network (like `default`); a bridged NIC gets its address from the LAN\'s DHCP server',
    });
  }
  if (nics.length > 1 && !opts.network) {
    throw new VmdeskError('USAGE', `${name} has NICs on ${nics.map((n) => n.source).join(' and ')}: say which with --network`, { context: { vm: name, host } });
  }
  const network = nic.source;
  // The network the NIC is attached to (by exact name), then every call by its UUID.
  const netInfo = await resolveNetwork(exec, uri, network);
  const [live, leases] = await Promise.all([
    isNetworkActive(exec, uri, netInfo.uuid, network),
    // Current leases: an address leased to another guest right now is refused like a reserved one.
    run(exec, netDhcpLeasesArgv(uri, netInfo.uuid), 'net-dhcp-leases', { network }).then(parseDhcpLeases, () => []),
  ]);
  const net = { ...netInfo, leases };
  const update = async (command: 'add' | 'modify' | 'delete', hostXml: string) => {
    await run(exec, netUpdateDhcpHostArgv(uri, netInfo.uuid, command, hostXml, { live }), 'net-update', { network, vm: name });
  };
  if (opts.remove) {
    const xml = removalXml(net, nic.mac);
    if (!xml) return { vm: name, network, mac: nic.mac, action: 'none', isLive: live };
    await update('delete', xml);
    return { vm: name, network, mac: nic.mac, action: 'delete', isLive: live };
  }
  const ip = opts.ip ?? d.addresses.find((a) => a.mac === nic.mac && /^\d+\.\d+\.\d+\.\d+$/.test(a.ip))?.ip;
  if (!ip) {
    throw new VmdeskError('VM_NO_IP', `${name} has no IPv4 address on ${network} to pin (MAC ${nic.mac})`, {
      context: { vm: name, host },
      hint: `name the address: vmdesk pin-ip ${host}/${name} 192.168.122.N`,
    });
  }
  const plan = planReservation(net, nic.mac, ip, name);
  if (plan.action !== 'none') await update(plan.action, plan.hostXml);
  return { vm: name, network, mac: nic.mac, ip, action: plan.action, isLive: live };
}

/** Where libvirt's QEMU driver keeps its settings (vnc_listen, vnc_tls, ...). */
export const QEMU_CONF_PATH = '/etc/libvirt/qemu.conf';

/** The host's qemu.conf, or undefined when the SSH user may not read it. */
export async function readQemuConf(exec: RemoteExec): Promise<string | undefined> {
  const r = await exec(commandLine(['cat', QEMU_CONF_PATH]));
  return r.code === 0 ? r.stdout.toString('utf8') : undefined;
}
