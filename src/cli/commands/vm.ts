/** VMs by name: `vmdesk ls`, `vnc`, `rdp`, `open`, `hosts`. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureRuntimeDir } from '../../daemon/runtime-dir.js';
import { Tunnel, type TunnelInfo } from '../../daemon/tunnel.js';
import { loadConfig } from '../../config/config.js';
import { VmdeskError, isVmdeskError } from '../../errors.js';
import type { ChannelTarget, ForwardSpec, VmTarget } from '../../forward/types.js';
import { isExposed } from '../../libvirt/domain-xml.js';
import type { InventoryDomain } from '../../libvirt/inventory.js';
import { checkSocketAccess, readDomain, readInventory, startDomain } from '../../libvirt/remote.js';
import { consoleAddress, shellWord } from '../../console/vm-view.js';
import { pinnedIps } from '../../libvirt/dhcp-hosts.js';
import { quoteArg } from '../../libvirt/shell-quote.js';
import { guestAddress, vncDisplay, vncTarget } from '../../libvirt/vm-target.js';
import { formatTable } from '../output.js';
import { openRdpClient, openVncViewer, rdpFileText } from '../viewers.js';
import { connectHost, connectVm, hostTarget, type ConnectedHost, type HostOptions } from '../vm-context.js';
import { openInAgent, parsePortOption, warnIfNotLoopback, type CliContext } from './forward.js';

export interface VmCommandOptions extends HostOptions {
  port?: string;
  detach?: boolean;
  open?: boolean;
  start?: boolean;
  json?: boolean;
  bind?: string;
  ip?: string;
  rdpFile?: string;
  /** `vnc --browser`: serve the browser console instead of a local port. */
  browser?: boolean;
}

/** Printable form of a name that may hold control characters. */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is looked for
  return /[\u0000-\u001f\u007f]/.test(s) ? JSON.stringify(s) : s;
}

function consoleText(d: InventoryDomain): string {
  if (d.graphics.length === 0) return 'none';
  return d.graphics
    .map((g) => `${g.type} ${consoleAddress(g)}${isExposed(g) ? ' EXPOSED' : ''}`)
    .join(', ');
}

function passwordText(d: InventoryDomain): string {
  const vnc = d.graphics.filter((g) => g.type === 'vnc' || g.type === 'spice');
  if (vnc.length === 0) return '-';
  if (!d.arePasswordsKnown) return '?';
  return vnc.some((g) => g.hasPassword) ? 'yes' : 'no';
}

/** `vmdesk ls HOST...` */
export async function lsCommand(hosts: string[], opts: VmCommandOptions): Promise<number> {
  const names = hosts.length > 0 ? hosts : loadConfig(opts.config).hosts.map((h) => h.name);
  if (names.length === 0) throw new VmdeskError('USAGE', 'name a host: vmdesk ls HOST (an ssh_config alias, user@host, or a host from ~/.config/vmdesk/config.yaml)');
  const results = await Promise.all(
    names.map(async (name) => {
      let h: ConnectedHost | undefined;
      try {
        h = await connectHost(hostTarget(name, opts), opts);
        return { name, inventory: await readInventory(h.exec, h.uri) };
      } catch (err) {
        return { name, error: err };
      } finally {
        await h?.chain.close();
      }
    }),
  );
  // With one host, its failure is the command's failure; with several, each is reported and the rest shown.
  if (results.length === 1 && results[0]!.error) throw results[0]!.error;
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        results.map((r) =>
          r.error
            ? { host: r.name, error: isVmdeskError(r.error) ? r.error.toJSON() : { code: 'INTERNAL', message: String(r.error) } }
            : { host: r.name, vms: r.inventory!.domains.map((d) => ({ ...d, error: d.error?.toJSON() })), networks: r.inventory!.networks.map((n) => ({ ...n, error: n.error?.toJSON() })) },
        ),
      )}\n`,
    );
    return results.some((r) => r.error) ? 1 : 0;
  }
  const rows: string[][] = [];
  for (const r of results) {
    if (r.error) continue;
    const pinned = new Map(r.inventory!.networks.flatMap((n) => [...pinnedIps(n)]));
    for (const d of r.inventory!.domains) {
      const a = d.addresses[0];
      const ref = shellWord(`${r.name}/${d.name ?? d.uuid}`);
      rows.push([
        r.name,
        printable(d.name ?? `(${d.uuid})`),
        d.state,
        consoleText(d),
        passwordText(d),
        d.interfaces.map((i) => i.mac).join(',') || '-',
        a ? `${a.ip} (${a.source === 'neigh' ? 'arp' : a.source}${pinned.get(a.mac.toLowerCase()) === a.ip ? ', pinned' : ''})` : '-',
        d.state === 'running' ? `vmdesk vnc ${ref}` : `vmdesk vnc --start ${ref}`,
      ]);
    }
  }
  process.stdout.write(`${formatTable(['HOST', 'VM', 'STATE', 'CONSOLE', 'PASSWD', 'MAC', 'IP', 'REACH'], rows)}\n`);
  let failed = 0;
  for (const r of results) {
    if (!r.error) continue;
    failed++;
    const e = r.error as VmdeskError;
    process.stderr.write(`vmdesk: ${r.name}: ${e.message}${e.code ? ` [${e.code}]` : ''}\n`);
  }
  return failed ? 1 : 0;
}

async function ensureRunning(host: ConnectedHost, d: InventoryDomain, start: boolean): Promise<InventoryDomain> {
  if (d.state === 'running' || d.state === 'paused' || !start) return d;
  process.stderr.write(`vmdesk: starting ${printable(d.name!)} on ${host.name}\n`);
  await startDomain(host.exec, host.uri, d.uuid);
  for (let i = 0; i < 50; i++) {
    const now = await readDomain(host.exec, host.uri, d.uuid, { addresses: true });
    if (now.state === 'running') return now;
    await sleep(200);
  }
  return readDomain(host.exec, host.uri, d.uuid, { addresses: true });
}

interface Prepared {
  host: ConnectedHost;
  domain: InventoryDomain;
  specs: ForwardSpec[];
}

/** Runs the tunnel in the agent (-d) or here until Ctrl-C, then prints/opens. */
async function runVmTunnel(p: Prepared, opts: VmCommandOptions, ctx: CliContext, after: (info: TunnelInfo) => void): Promise<number> {
  warnIfNotLoopback(p.specs.map((s) => s.bindAddress));
  const dest = `${p.host.name}/${p.domain.name}`;
  if (opts.detach) {
    await p.host.chain.close();
    after(await openInAgent(ctx, { dest, hops: p.host.hops, specs: p.specs, autoPort: opts.port === undefined, acceptNewHostKey: opts.acceptNewHostKey ?? false }));
    return 0;
  }
  const chain = p.host.chain;
  chain.setPrompter(undefined);
  const tunnel = new Tunnel({ id: 'fg', dest, chain, specs: p.specs, autoPort: opts.port === undefined, log: (l) => process.stderr.write(`vmdesk: ${l}\n`) });
  try {
    await tunnel.listen();
  } catch (err) {
    await chain.close();
    throw err;
  }
  after(tunnel.info());
  process.stderr.write('vmdesk: Ctrl-C stops\n');
  const signal = await ctx.stopSignal;
  process.stderr.write(`vmdesk: ${signal}: closing\n`);
  await tunnel.close();
  await chain.close();
  return 0;
}

function vmSpec(p: { host: ConnectedHost; domain: InventoryDomain }, service: 'vnc' | 'rdp', localPort: number, opts: VmCommandOptions): ForwardSpec {
  const target: VmTarget = { kind: 'vm', uri: p.host.uri, uuid: p.domain.uuid, vm: p.domain.name!, service, ...(service === 'rdp' && opts.ip ? { ip: opts.ip } : {}) };
  return { bindAddress: opts.bind ?? '127.0.0.1', localPort, target, source: `${p.host.name}/${p.domain.name} ${service}` };
}

function portOf(info: TunnelInfo, service: 'vnc' | 'rdp'): number {
  const f = info.forwards.find((x) => x.target.kind === 'vm' && x.target.service === service);
  return f!.localPort;
}

/** The VM's console now, failing early if it is not running, has no VNC, or is a socket the SSH user cannot open. */
async function usableVncTarget(host: ConnectedHost, domain: InventoryDomain): Promise<ChannelTarget> {
  const t = vncTarget(domain, host.name);
  if (t.kind === 'unix') await checkSocketAccess(host.exec, t.path, host.name, domain.name!);
  return t;
}

/** `vmdesk vnc HOST/VM` */
export async function vncCommand(ref: string, opts: VmCommandOptions, ctx: CliContext): Promise<number> {
  const { host, domain: found } = await connectVm(ref, { ...opts, addresses: false });
  let domain: InventoryDomain;
  let display: number | undefined;
  try {
    domain = await ensureRunning(host, found, opts.start ?? false);
    display = vncDisplay(await usableVncTarget(host, domain));
  } catch (err) {
    await host.chain.close();
    throw err;
  }
  if (opts.browser) {
    const path = `/console?${new URLSearchParams({ host: host.name, uuid: domain.uuid, name: domain.name! }).toString()}`;
    const { serveUi, uiHost, cliChainOptions } = await import('./ui.js');
    return serveUi({ hosts: [{ ...uiHost(host), connected: host.chain }], path, chain: cliChainOptions(opts), ui: opts, stopSignal: ctx.stopSignal });
  }
  const localPort = parsePortOption(opts.port) ?? 5900 + (display ?? 0);
  return runVmTunnel({ host, domain, specs: [vmSpec({ host, domain }, 'vnc', localPort, opts)] }, opts, ctx, (info) => {
    const port = portOf(info, 'vnc');
    if (opts.json) process.stdout.write(`${JSON.stringify({ ...info, url: `vnc://127.0.0.1:${port}` })}\n`);
    else process.stdout.write(`vnc://127.0.0.1:${port}  (${printable(domain.name!)} on ${host.name}${port !== localPort ? `; ${localPort} was taken` : ''}${opts.detach ? `; tunnel ${info.id}, vmdesk stop ${info.id}` : ''})\n`);
    if (opts.open) reportViewer(openVncViewer(port), 'VNC viewer (vncviewer, remote-viewer, gvncviewer)');
  });
}

/** Writes the .rdp file for a forward (default: in the private runtime directory); returns its path. */
function writeRdpFile(host: ConnectedHost, domain: InventoryDomain, port: number, opts: VmCommandOptions): string {
  const file = opts.rdpFile ?? join(ensureRuntimeDir(), `${host.name}-${domain.name!.replace(/[^A-Za-z0-9._-]/g, '_')}.rdp`);
  writeFileSync(file, rdpFileText(port), { mode: 0o600 });
  return file;
}

function reportViewer(started: string | undefined, what: string): void {
  process.stderr.write(started ? `vmdesk: started ${started}\n` : `vmdesk: no ${what} found on this machine; connect one to the address above\n`);
}

/** `vmdesk rdp HOST/VM` */
export async function rdpCommand(ref: string, opts: VmCommandOptions, ctx: CliContext): Promise<number> {
  const { host, domain: found } = await connectVm(ref, opts);
  let domain: InventoryDomain;
  let ip: string;
  try {
    domain = await ensureRunning(host, found, opts.start ?? false);
    if (opts.browser && opts.ip) throw new VmdeskError('USAGE', '--ip cannot be used with --browser', { hint: 'the browser session finds the guest by its MAC for every connection' });
    ip = opts.ip ?? guestAddress(domain, host.name, ['DHCP leases', 'neighbour table']).ip;
  } catch (err) {
    await host.chain.close();
    throw err;
  }
  if (opts.browser) {
    // IronRDP's web client through the UI server's RDCleanPath endpoint: no local RDP port (docs/ui.md).
    const path = `/rdp?${new URLSearchParams({ host: host.name, uuid: domain.uuid, name: domain.name! }).toString()}`;
    const { serveUi, uiHost, cliChainOptions } = await import('./ui.js');
    return serveUi({ hosts: [{ ...uiHost(host), connected: host.chain }], path, chain: cliChainOptions(opts), ui: opts, stopSignal: ctx.stopSignal });
  }
  const localPort = parsePortOption(opts.port) ?? 3389;
  return runVmTunnel({ host, domain, specs: [vmSpec({ host, domain }, 'rdp', localPort, opts)] }, opts, ctx, (info) => {
    const port = portOf(info, 'rdp');
    const file = writeRdpFile(host, domain, port, opts);
    if (opts.json) process.stdout.write(`${JSON.stringify({ ...info, address: `127.0.0.1:${port}`, guestIp: ip, rdpFile: file })}\n`);
    else process.stdout.write(`rdp 127.0.0.1:${port} -> ${ip}:3389 (${printable(domain.name!)} on ${host.name}); .rdp file: ${file}${opts.detach ? `; tunnel ${info.id}` : ''}\n`);
    if (opts.open) reportViewer(openRdpClient(file, port), 'RDP client (xfreerdp, wlfreerdp)');
  });
}

/** `vmdesk open HOST/VM`: the seed's VNC + RDP script as one detached tunnel. */
export async function openCommand(ref: string, opts: VmCommandOptions, ctx: CliContext): Promise<number> {
  const { host, domain: found } = await connectVm(ref, opts);
  let domain: InventoryDomain;
  const specs: ForwardSpec[] = [];
  let ip: string | undefined;
  try {
    domain = await ensureRunning(host, found, opts.start ?? false);
    specs.push(vmSpec({ host, domain }, 'vnc', 5900 + (vncDisplay(await usableVncTarget(host, domain)) ?? 0), opts));
    try {
      ip = opts.ip ?? guestAddress(domain, host.name, ['DHCP leases', 'neighbour table']).ip;
      specs.push(vmSpec({ host, domain }, 'rdp', 3389, opts));
    } catch (err) {
      if (!isVmdeskError(err, 'VM_NO_IP')) throw err;
      process.stderr.write(`vmdesk: no RDP: ${err.message}\n`);
    }
  } catch (err) {
    await host.chain.close();
    throw err;
  }
  return runVmTunnel({ host, domain, specs }, { ...opts, detach: opts.detach ?? true, port: undefined }, ctx, (info) => {
    const vnc = portOf(info, 'vnc');
    const rdp = ip ? portOf(info, 'rdp') : undefined;
    const file = rdp ? writeRdpFile(host, domain, rdp, opts) : undefined;
    if (opts.json) process.stdout.write(`${JSON.stringify({ ...info, url: `vnc://127.0.0.1:${vnc}`, ...(rdp ? { rdp: `127.0.0.1:${rdp}`, guestIp: ip, rdpFile: file } : {}) })}\n`);
    else {
      process.stdout.write(`vnc://127.0.0.1:${vnc}\n`);
      if (rdp) process.stdout.write(`rdp 127.0.0.1:${rdp} -> ${ip}:3389 (.rdp file: ${file})\n`);
      process.stdout.write(`${printable(domain.name!)} on ${host.name}; tunnel ${info.id} (vmdesk stop ${info.id})\n`);
    }
    if (opts.open) {
      reportViewer(openVncViewer(vnc), 'VNC viewer');
      if (rdp && file) reportViewer(openRdpClient(file, rdp), 'RDP client');
    }
  });
}

/** `vmdesk hosts`: configured hypervisors and whether they answer. */
export async function hostsCommand(opts: VmCommandOptions): Promise<number> {
  const cfg = loadConfig(opts.config);
  interface HostStatus {
    name: string;
    dest: string;
    uri: string;
    jump?: string;
    reachable: boolean;
    chain?: string;
    libvirt?: boolean;
    ms?: number;
    error?: { code: string; message: string };
  }
  const results = await Promise.all(
    cfg.hosts.map(async (hc): Promise<HostStatus> => {
      const t = hostTarget(hc.name, opts);
      const started = Date.now();
      try {
        const h = await connectHost(t, opts);
        try {
          const r = await h.exec(`virsh -c ${quoteArg(h.uri)} version --daemon >/dev/null 2>&1 && echo ok`);
          return { ...t, reachable: true, libvirt: r.stdout.toString().trim() === 'ok', chain: h.chain.label, ms: Date.now() - started };
        } finally {
          await h.chain.close();
        }
      } catch (err) {
        return { ...t, reachable: false, error: isVmdeskError(err) ? err.toJSON() : { code: 'INTERNAL', message: String(err) } };
      }
    }),
  );
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ file: cfg.file ?? null, hosts: results })}\n`);
    return 0;
  }
  if (results.length === 0) {
    process.stdout.write(`no hosts configured${cfg.file ? ` in ${cfg.file}` : ''}. Add some to ~/.config/vmdesk/config.yaml:\n\nhosts:\n  lab: kvmhost            # an ssh_config alias or user@host\n  far:\n    ssh: admin@192.168.0.2\n    jump: user@10.1.1.1\n`);
    return 0;
  }
  const rows = results.map((r) => [r.name, r.dest, r.jump ?? '-', r.uri, r.reachable ? (r.libvirt ? `ok (${r.ms} ms)` : 'ssh ok, libvirt not reachable') : `${r.error?.code}: ${r.error?.message}`]);
  process.stdout.write(`${formatTable(['HOST', 'SSH', 'JUMP', 'LIBVIRT', 'STATUS'], rows)}\n`);
  return 0;
}
