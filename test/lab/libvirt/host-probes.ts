/**
 * What the KVM host itself shows, for tests that change it through vmdesk:
 * its TCP listeners (`ss -ltn`), a domain's persistent definition and live
 * console port (`virsh dumpxml`), DHCP leases, reachability from the jump
 * host, and a QEMU started by hand (not by libvirt) with VNC on the network.
 * Everything runs with the host's own tools inside its namespace.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDhcpLeases } from '../../../src/libvirt/leases.js';
import { runProcess, spawnDetached } from '../exec.js';
import { killPids, processName } from '../processes.js';
import { pollUntil } from '../poll.js';
import { LIBVIRT_RUN_DIR, NETWORK_NAME, domainXml, serialLogPath, type LabDomain } from './domains.js';
import { hostEnv } from './host-exec.js';
import type { Hypervisor } from './hypervisor.js';

/** Local addresses (`0.0.0.0:5901`, `127.0.0.1:6001`, `[::]:22`) of every listening TCP socket in the host namespace. */
export async function tcpListeners(hv: Hypervisor): Promise<string[]> {
  const r = await hv.run(['ss', '-Htln']);
  if (r.code !== 0) throw new Error(`ss -Htln exited ${r.code}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[3])
    .filter((a): a is string => a !== undefined && a !== '');
}

/** Listeners on every address (0.0.0.0, [::], *): what other machines can reach. */
export async function wildcardListeners(hv: Hypervisor): Promise<string[]> {
  return (await tcpListeners(hv)).filter((a) => /^(0\.0\.0\.0|\[::\]|\*):\d+$/.test(a)).sort();
}

async function virshOut(hv: Hypervisor, args: readonly string[]): Promise<string> {
  const r = await hv.virsh(args);
  if (r.code !== 0) throw new Error(`virsh ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** `virsh dumpxml --inactive --security-info`: the persistent definition, passwords included, byte for byte. */
export function inactiveXml(hv: Hypervisor, name: string): Promise<string> {
  return virshOut(hv, ['dumpxml', '--inactive', '--security-info', '--domain', name]);
}

/** `virsh net-dumpxml` of the lab network (live), or its persistent definition with `inactive`. */
export function networkXmlOnHost(hv: Hypervisor, opts: { inactive?: boolean } = {}): Promise<string> {
  return virshOut(hv, ['net-dumpxml', ...(opts.inactive ? ['--inactive'] : []), '--network', NETWORK_NAME]);
}

/** The `<graphics>` elements of a domain XML, as text. */
export function graphicsElements(xml: string): string[] {
  return [...xml.matchAll(/<graphics\b[^>]*\/>|<graphics\b[^>]*[^/]>[\s\S]*?<\/graphics>/g)].map((m) => m[0]);
}

/** Every listen address a domain XML's consoles name (the `listen=` attribute and `<listen address=>` children), and `network:NAME` for network listens. */
export function listenAddresses(xml: string): string[] {
  const out = new Set<string>();
  for (const g of graphicsElements(xml)) {
    for (const m of g.matchAll(/\s(?:listen|address)='([^']*)'/g)) out.add(m[1]!);
    for (const m of g.matchAll(/<listen type='network' network='([^']*)'/g)) out.add(`network:${m[1]!}`);
  }
  return [...out].sort();
}

/** The running domain's VNC TCP port from its live XML. */
export async function vncPort(hv: Hypervisor, name: string): Promise<number> {
  const xml = await virshOut(hv, ['dumpxml', '--domain', name]);
  const m = /<graphics type='vnc' port='(\d+)'/.exec(xml);
  const port = Number(m?.[1] ?? -1);
  if (!(port > 0)) throw new Error(`${name} has no VNC port in its live XML: ${graphicsElements(xml).join(' ')}`);
  return port;
}

/** IPv4 addresses leased to `mac` on the lab network (`virsh net-dhcp-leases`). */
export async function leasedIps(hv: Hypervisor, mac: string): Promise<string[]> {
  const out = await virshOut(hv, ['net-dhcp-leases', '--network', NETWORK_NAME, '--mac', mac]);
  return parseDhcpLeases(out)
    .filter((l) => l.mac === mac && l.protocol === 'ipv4')
    .map((l) => l.ipAddress)
    .sort();
}

/** Defines an extra lab domain (same kernel and initramfs as the lab's guests) and, unless `start` is false, starts it. */
export async function defineGuest(hv: Hypervisor, d: LabDomain, opts: { start?: boolean } = {}): Promise<void> {
  const dir = join(LIBVIRT_RUN_DIR, 'xml');
  await mkdir(dir, { recursive: true });
  await mkdir(join(LIBVIRT_RUN_DIR, 'serial'), { recursive: true, mode: 0o755 });
  const file = join(dir, `${d.uuid}.xml`);
  await writeFile(file, domainXml(d, hv.image));
  await virshOut(hv, ['define', '--file', file]);
  if (opts.start ?? true) await startGuest(hv, d);
}

/** Starts a defined lab domain with a fresh serial log. */
export async function startGuest(hv: Hypervisor, d: LabDomain): Promise<void> {
  await mkdir(join(LIBVIRT_RUN_DIR, 'serial'), { recursive: true, mode: 0o755 });
  await rm(serialLogPath(d), { force: true });
  await virshOut(hv, ['start', '--domain', d.uuid]);
}

/** Powers a domain off (virsh destroy) and starts it again: the guest boots and asks for a DHCP lease anew. */
export async function powerCycle(hv: Hypervisor, d: LabDomain): Promise<void> {
  await virshOut(hv, ['destroy', '--domain', d.uuid]);
  await startGuest(hv, d);
}

const RFB_PROBE = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
let got = Buffer.alloc(0);
const timer = setTimeout(() => { process.stdout.write('ETIMEDOUT'); process.exit(0); }, 5000);
s.on('data', (b) => { got = Buffer.concat([got, b]); if (got.length >= 12) { clearTimeout(timer); process.stdout.write(got.subarray(0, 12).toString('latin1').trim()); s.destroy(); process.exit(0); } });
s.on('error', (e) => { clearTimeout(timer); process.stdout.write(e.code || e.message); process.exit(0); });
`;

/**
 * Connects from namespace `ns` (e.g. the jump host, a machine on the
 * hypervisor's LAN) to host:port and returns the RFB greeting (`RFB 003.008`)
 * or the error code (`ECONNREFUSED`, `ETIMEDOUT`).
 */
export async function rfbGreetingFrom(ns: string, host: string, port: number): Promise<string> {
  const r = await runProcess(['ip', 'netns', 'exec', ns, process.execPath, '-e', RFB_PROBE, host, String(port)], { env: hostEnv(), timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`the RFB probe in ${ns} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

export interface HandStartedQemu {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/**
 * A QEMU started by hand in namespace `ns`, as people do next to libvirt:
 * `qemu-system-x86_64 -vnc 0.0.0.0:DISPLAY`, no disk, CPUs stopped (-S) so
 * it costs nothing; returns once its VNC port listens.
 */
export async function startHandQemu(hv: Hypervisor, opts: { display: number; name: string; listen?: string }): Promise<HandStartedQemu> {
  const port = 5900 + opts.display;
  const argv = ['qemu-system-x86_64', '-name', opts.name, '-machine', 'pc', '-S', '-m', '64', '-nodefaults', '-display', 'none', '-vnc', `${opts.listen ?? '0.0.0.0'}:${opts.display}`];
  // `ip netns exec` execs in place: the pid is QEMU's own.
  const child = spawnDetached(['ip', 'netns', 'exec', hv.namespace, ...argv], { env: hostEnv(), stderr: 'pipe' });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  let exited: string | undefined;
  child.on('exit', (code, sig) => (exited = `exited ${code ?? sig}`));
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start qemu-system-x86_64');
  const stop = async (): Promise<void> => {
    if (exited === undefined && (await processName(pid))?.startsWith('qemu-system')) await killPids([pid]);
  };
  try {
    await pollUntil(
      async () => {
        if (exited) throw new Error(`the hand-started QEMU ${exited}: ${stderr.trim()}`);
        return (await tcpListeners(hv)).includes(`${opts.listen ?? '0.0.0.0'}:${port}`);
      },
      { timeoutMs: 20_000, intervalMs: 200, what: `the hand-started QEMU to listen on port ${port}` },
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { pid, port, stop };
}
