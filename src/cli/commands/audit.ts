/** `vmdesk audit`, `vmdesk vnc-listen`, `vmdesk pin-ip`: exposed consoles found, moved, and guests' addresses pinned. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../config/config.js';
import { shellWord } from '../../console/vm-view.js';
import { VmdeskError } from '../../errors.js';
import { auditHost, type AuditReport } from '../../libvirt/audit.js';
import type { DomainUuid } from '../../libvirt/domain-list.js';
import { isLoopback } from '../../libvirt/domain-xml.js';
import { changeListen, pinIp, readQemuConf, type ListenChange } from '../../libvirt/edits.js';
import { parseQemuConf } from '../../libvirt/qemu-conf.js';
import { QEMU_PROCESS_SCRIPT, parseQemuProcesses } from '../../libvirt/qemu-processes.js';
import { readInventory } from '../../libvirt/remote.js';
import { EXIT } from '../exit-codes.js';
import { formatTable } from '../output.js';
import { TtyPrompter } from '../prompters.js';
import { connectHost, connectVm, hostTarget, splitVmRef, type ConnectedHost, type HostOptions } from '../vm-context.js';

export interface EditOptions extends HostOptions {
  yes?: boolean;
  restart?: boolean;
  force?: boolean;
  backupDir?: string;
  shutdownTimeout?: string;
  json?: boolean;
}

export interface AuditOptions extends EditOptions {
  fix?: boolean;
}

export interface PinIpOptions extends HostOptions {
  network?: string;
  remove?: boolean;
  json?: boolean;
}

const canAsk = () => Boolean(process.stdin.isTTY && process.stderr.isTTY);

/** A yes/no question on the terminal; false without a terminal. */
async function confirm(question: string): Promise<boolean> {
  if (!canAsk()) return false;
  const answer = await new TtyPrompter().ask(`${question} [y/N] `, { echo: true });
  return /^y(es)?$/i.test(answer.trim());
}

function timeoutMs(opts: EditOptions): number | undefined {
  if (opts.shutdownTimeout === undefined) return undefined;
  const s = Number(opts.shutdownTimeout);
  if (!Number.isFinite(s) || s < 0) throw new VmdeskError('USAGE', `--shutdown-timeout expects seconds, got '${opts.shutdownTimeout}'`);
  return s * 1000;
}

function saveLocalBackup(dir: string, c: ListenChange, host: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${host.replace(/[^A-Za-z0-9._-]/g, '_')}-${c.uuid}-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.xml`);
  writeFileSync(file, c.backupXml!, { mode: 0o600 });
  return file;
}

/** Changes the domain `uuid` (resolved from its exact name before); `vm` is its name, for the question. */
async function applyListen(h: ConnectedHost, uuid: DomainUuid, vm: string, address: string, opts: EditOptions): Promise<ListenChange & { localBackup?: string }> {
  const progress = (line: string) => {
    if (!opts.json) process.stderr.write(`vmdesk: ${line}\n`);
  };
  const shutdownTimeoutMs = timeoutMs(opts);
  const change = await changeListen(h.exec, h.uri, uuid, address, {
    restart: opts.restart ?? false,
    force: opts.force ?? false,
    ...(shutdownTimeoutMs !== undefined ? { shutdownTimeoutMs } : {}),
    confirmDestroy: () => confirm(`${vm} did not shut down cleanly. Power it off (virsh destroy)?`),
    progress,
  });
  return opts.backupDir && change.backupXml ? { ...change, localBackup: saveLocalBackup(opts.backupDir, change, h.name) } : change;
}

function describeChange(c: ListenChange & { localBackup?: string }, host: string): string {
  const lines: string[] = [];
  const who = `${c.vm} on ${host}`;
  if (!c.isChanged) lines.push(`${who} already listens on ${c.address}; its definition is unchanged`);
  else {
    lines.push(`${who}: console listen ${c.before.join(', ') || '(default)'} -> ${c.address}`);
    lines.push(`  previous definition saved on ${host}: ${c.backupPath}${c.localBackup ? ` (and here: ${c.localBackup})` : ''}`);
  }
  if (c.isRestarted) lines.push(`  restarted: it now listens on ${c.address}`);
  else if (c.isLiveStale) lines.push(`  it is running and keeps its old listen address until it restarts: add --restart, or restart it yourself`);
  return lines.join('\n');
}

/** `vmdesk vnc-listen HOST/VM ADDRESS` */
export async function vncListenCommand(ref: string, address: string, opts: EditOptions): Promise<number> {
  const { host: hostName } = splitVmRef(ref);
  if (!hostName) throw new VmdeskError('USAGE', 'write HOST/VM: a definition is changed on one named host');
  if (!isLoopback(address)) {
    const risk =
      `listening on ${address} lets anyone who can reach ${hostName} open this console: VNC is unencrypted and its password is at most 8 characters. ` +
      `The safe way: keep 127.0.0.1 and use \`vmdesk vnc ${shellWord(ref)}\` (or --browser) through SSH.`;
    if (!opts.yes) throw new VmdeskError('CONFIRMATION_REQUIRED', risk, { hint: 'add --yes to change it anyway' });
    process.stderr.write(`vmdesk: warning: ${risk}\n`);
  }
  const { host, domain } = await connectVm(ref, { ...opts, addresses: false });
  try {
    const c = await applyListen(host, domain.uuid, domain.name!, address, opts);
    const { backupXml: _omit, ...shown } = c;
    process.stdout.write(opts.json ? `${JSON.stringify({ host: host.name, ...shown })}\n` : `${describeChange(c, host.name)}\n`);
    return 0;
  } finally {
    await host.chain.close();
  }
}

/** One host's consoles: its inventory, its QEMU processes and its qemu.conf, read in parallel over one chain. */
async function auditConnected(h: ConnectedHost): Promise<AuditReport> {
  const [inv, ps, conf] = await Promise.all([readInventory(h.exec, h.uri), h.exec(QEMU_PROCESS_SCRIPT), readQemuConf(h.exec)]);
  return auditHost(h.name, inv, parseQemuProcesses(ps.stdout.toString('utf8')), conf === undefined ? undefined : parseQemuConf(conf));
}

async function auditOne(name: string, opts: AuditOptions): Promise<{ h: ConnectedHost; report: AuditReport }> {
  const h = await connectHost(hostTarget(name, opts), opts);
  try {
    return { h, report: await auditConnected(h) };
  } catch (err) {
    await h.chain.close();
    throw err;
  }
}

const yesNo = (v: boolean | null) => (v === null ? '?' : v ? 'yes' : 'no');

function printReports(reports: AuditReport[]): void {
  const rows = reports.flatMap((r) =>
    r.consoles.map((c) => [
      r.host,
      c.vm ?? `pid ${c.pid} (not libvirt)`,
      c.kind,
      c.socket ? `unix:${c.socket}` : c.listen.length > 0 ? `${c.listen.join(',')}${c.port !== undefined ? `:${c.port}` : ''}` : (c.note ?? '?'),
      yesNo(c.hasPassword),
      yesNo(c.hasTls),
      c.isExposed ? 'EXPOSED' : 'ok',
    ]),
  );
  process.stdout.write(`${formatTable(['HOST', 'VM', 'CONSOLE', 'LISTEN', 'PASSWD', 'TLS', 'STATUS'], rows)}\n`);
  const findings = reports.flatMap((r) => r.findings);
  if (findings.length === 0) {
    process.stdout.write('\nNo exposed consoles.\n');
    return;
  }
  process.stdout.write(`\n${findings.length} exposed console${findings.length === 1 ? '' : 's'}:\n`);
  for (const f of findings) process.stdout.write(`  [${f.severity.toUpperCase()}] ${f.message}\n      fix: ${f.fix}\n`);
}

/** `vmdesk audit [HOST...]`: exit 0 when clean, 21 when any console is exposed. */
export async function auditCommand(hosts: string[], opts: AuditOptions): Promise<number> {
  const names = hosts.length > 0 ? hosts : loadConfig(opts.config).hosts.map((h) => h.name);
  if (names.length === 0) throw new VmdeskError('USAGE', 'name a host: vmdesk audit HOST (an ssh_config alias, user@host, or a host from ~/.config/vmdesk/config.yaml)');
  const settled = await Promise.allSettled(names.map((n) => auditOne(n, opts)));
  const audited = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // An audit that could not look at every host is not a clean audit: its error (and exit status) wins.
    await Promise.all(audited.map((a) => a.h.chain.close()));
    throw failed.reason;
  }
  try {
    let reports = audited.map((a) => a.report);
    if (!opts.fix) {
      if (opts.json) process.stdout.write(`${JSON.stringify({ reports, exposed: reports.reduce((n, r) => n + r.findings.length, 0) })}\n`);
      else printReports(reports);
      return reports.some((r) => r.findings.length > 0) ? EXIT.AUDIT_EXPOSED : 0;
    }
    // By the UUID the audit read, never by name (virsh would read a name like `1` as another VM's ID).
    const fixable = audited.flatMap((a) => a.report.findings.filter((f) => f.vm !== undefined && f.uuid !== undefined).map((f) => ({ h: a.h, vm: f.vm!, uuid: f.uuid! })));
    const unique = [...new Map(fixable.map((f) => [`${f.h.name}\u0000${f.uuid}`, f])).values()];
    if (!opts.json) printReports(reports);
    if (unique.length > 0 && !opts.yes) {
      const list = unique.map((f) => `${f.h.name}/${f.vm}`).join(', ');
      if (!canAsk()) throw new VmdeskError('CONFIRMATION_REQUIRED', `--fix would move the consoles of ${list} to 127.0.0.1`, { hint: 'add --yes to do it without a terminal' });
      if (!(await confirm(`Move the consoles of ${list} to 127.0.0.1${opts.restart ? ' and restart them' : ''}?`))) {
        process.stderr.write('vmdesk: nothing changed\n');
        return EXIT.AUDIT_EXPOSED;
      }
    }
    const changes = [];
    for (const f of unique) {
      const c = await applyListen(f.h, f.uuid, f.vm, '127.0.0.1', opts);
      changes.push({ host: f.h.name, ...c, backupXml: undefined });
      if (!opts.json) process.stdout.write(`${describeChange(c, f.h.name)}\n`);
    }
    reports = await Promise.all(audited.map((a) => auditConnected(a.h)));
    const left = reports.reduce((n, r) => n + r.findings.length, 0);
    if (opts.json) process.stdout.write(`${JSON.stringify({ changes, reports, exposed: left })}\n`);
    else process.stdout.write(left === 0 ? '\nAudit after the fix: no exposed consoles.\n' : `\nAudit after the fix: ${left} still exposed (see above; running VMs need --restart, hand-started QEMU must be restarted by hand).\n`);
    return left > 0 ? EXIT.AUDIT_EXPOSED : 0;
  } finally {
    await Promise.all(audited.map((a) => a.h.chain.close()));
  }
}

/** `vmdesk pin-ip HOST/VM [IP]` */
export async function pinIpCommand(ref: string, ip: string | undefined, opts: PinIpOptions): Promise<number> {
  if (ip !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new VmdeskError('USAGE', `expected an IPv4 address, got '${ip}'`);
  const { host, domain } = await connectVm(ref, opts);
  try {
    const r = await pinIp(host.exec, host.uri, domain.uuid, host.name, { ...(ip ? { ip } : {}), ...(opts.network ? { network: opts.network } : {}), remove: opts.remove ?? false });
    if (opts.json) process.stdout.write(`${JSON.stringify({ host: host.name, ...r })}\n`);
    else {
      const where = `${r.vm} (${r.mac}) on network ${r.network}`;
      const scope = r.isLive ? 'live and persistent' : 'persistent; the network is not running';
      const text =
        r.action === 'none'
          ? opts.remove
            ? `${where} has no reservation; nothing changed`
            : `${where} is already pinned to ${r.ip}; nothing changed`
          : r.action === 'delete'
            ? `removed the reservation of ${where} (${scope})`
            : `pinned ${where} to ${r.ip} (${scope}); the guest gets it at its next DHCP request (reboot or lease renewal)`;
      process.stdout.write(`${text}\n`);
    }
    return 0;
  } finally {
    await host.chain.close();
  }
}
