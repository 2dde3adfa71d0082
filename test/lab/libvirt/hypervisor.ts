/**
 * A real libvirt + QEMU hypervisor inside the lab's KVM-host namespace
 * (`vmd-host`, 192.168.0.2): virtlogd and libvirtd run in that namespace, so
 * QEMU's VNC on loopback, the `virbr0` bridge, dnsmasq and the NAT rules all
 * live there, exactly where the seed's libvirt sits behind the jump host.
 *
 * `libvirtUp()` assumes the lab's namespaces exist (labUp creates them) and
 * installs nothing: `.ci/run` installs LIBVIRT_PACKAGES. It stops whatever an
 * earlier run left (its daemons, lab domains and network, found by pid files
 * and by the lab's UUID prefix), starts afresh, and returns once every
 * running guest holds a DHCP lease and answers on TCP 3389. Only one libvirtd
 * can run per machine: `libvirtDown()` stops it again.
 *
 * @example
 *   const hv = await libvirtUp();          // after labUp()
 *   hv.addresses.get('win2016');           // '192.168.122.217'
 *   await libvirtDown();
 */
import { access, chmod, chown, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDhcpLeases } from '../../../src/libvirt/leases.js';
import { lookupUser } from '../accounts.js';
import { runChecked, runProcess, type RunResult } from '../exec.js';
import { NAMESPACES } from '../netns.js';
import { PollAbortError, pollUntil } from '../poll.js';
import { killPids, processName } from '../processes.js';
import {
  BRIDGE,
  GATEWAY,
  LAB_DOMAINS,
  LIBVIRT_RUN_DIR,
  NETWORK_NAME,
  NETWORK_UUID,
  domainXml,
  isLabUuid,
  networkXml,
  serialLogPath,
  vncSocketPath,
  type LabDomain,
} from './domains.js';
import { GUEST_CACHE_DIR, ensureGuestImage, type GuestImage } from './guest-image.js';
import { LIBVIRT_URI, hostEnv, runInNamespace, tcpReadIn, virshChecked, virshIn, type HostRunOptions } from './host-exec.js';

/** The Debian packages the hypervisor needs (for `.ci/run`); the guest kernel is fetched with `apt-get download`. */
export const LIBVIRT_PACKAGES = [
  'qemu-system-x86', // QEMU (TCG: no /dev/kvm needed)
  'libvirt-daemon', // libvirtd, virtlogd
  'libvirt-daemon-driver-qemu', // the qemu:///system driver
  'libvirt-clients', // virsh
  'dnsmasq-base', // DHCP for the NAT network
  'iptables', // the NAT network's rules; net-start fails without it
  'busybox-static', // the guests' userland (udhcpc, nc -ll -e)
  'iproute2', // ip netns
  'dpkg', // dpkg-deb, to unpack the kernel package
  'tar',
] as const;

/** The commands libvirtUp checks for before doing anything. */
const REQUIRED_COMMANDS = ['libvirtd', 'virtlogd', 'virsh', 'qemu-system-x86_64', 'dnsmasq', 'iptables', 'ip', 'dpkg-deb', 'apt-get', 'tar', 'groupadd', 'useradd', 'usermod'];

/** The group whose members may use libvirtd's read-write socket (libvirtd.conf unix_sock_group). */
export const LIBVIRT_GROUP = 'libvirt';
/** The lab's SSH user on the KVM host (test/lab/accounts.ts SERVER_USER). */
export const LAB_SSH_USER = 'labuser';

const LIBVIRTD_CONF = join(LIBVIRT_RUN_DIR, 'libvirtd.conf');
const LIBVIRTD_PID = join(LIBVIRT_RUN_DIR, 'libvirtd.pid');
const LIBVIRTD_LOG = join(LIBVIRT_RUN_DIR, 'libvirtd.log');
const VIRTLOGD_PID = join(LIBVIRT_RUN_DIR, 'virtlogd.pid');
const QEMU_CONF = '/etc/libvirt/qemu.conf';
const QEMU_CONF_MARK = '# Written by the vmdesk lab (test/lab/libvirt/hypervisor.ts).';
const VIRTLOGD_SOCK = '/run/libvirt/virtlogd-sock';
const DNSMASQ_STATE = '/var/lib/libvirt/dnsmasq';

/**
 * QEMU as root without per-domain mount namespaces or cgroups (the lab runs
 * in a container-like sandbox: no systemd, no machined), VNC on loopback by default.
 */
const QEMU_CONF_TEXT = `${QEMU_CONF_MARK}
# The original file, if there was one, is kept as qemu.conf.vmdesk-orig.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
vnc_listen = "127.0.0.1"
spice_listen = "127.0.0.1"
namespaces = [ ]
cgroup_controllers = [ ]
`;

const LIBVIRTD_CONF_TEXT = `# The vmdesk lab's libvirtd.conf, passed with --config.
unix_sock_group = "${LIBVIRT_GROUP}"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:${LIBVIRTD_LOG}"
`;

export interface LibvirtUpOptions {
  /** The KVM host's namespace (default `vmd-host`). */
  namespace?: string;
  /**
   * Create the namespace (loopback only) when it is missing. For developing
   * this module on its own; in the lab, labUp() owns the namespaces.
   */
  createNamespace?: boolean;
  /** Where the guest kernel and initramfs are cached (default /var/cache/vmdesk-lab/guest). */
  cacheDir?: string;
  /** Start the domains marked running and wait for them (default true); false defines them only. */
  startGuests?: boolean;
  /** How long to wait for every guest's lease and port 3389 (default 240 s: TCG on 2 cores). */
  bootTimeoutMs?: number;
}

export interface RunningGuest {
  domain: LabDomain;
  ip: string;
}

export interface Hypervisor {
  readonly uri: typeof LIBVIRT_URI;
  readonly namespace: string;
  readonly image: GuestImage;
  readonly network: { name: string; uuid: string; bridge: string; gateway: string };
  readonly domains: readonly LabDomain[];
  /** Each running guest's IPv4 address by domain name, from its DHCP lease. */
  readonly addresses: ReadonlyMap<string, string>;
  /** The group and user allowed to use virsh without root. */
  readonly users: { group: string; sshUser: string | undefined };
  /** How long libvirtUp took, and whether the guest image came from the cache. */
  readonly timings: { totalMs: number; imageMs: number; bootMs: number; imageCached: boolean };
  /** Runs virsh in the namespace (as root, or as `opts.user`). */
  virsh(args: readonly string[], opts?: HostRunOptions): Promise<RunResult>;
  /** Runs any argv in the namespace (as root, or as `opts.user`). */
  run(argv: readonly string[], opts?: HostRunOptions): Promise<RunResult>;
  /** What a guest's ttyS0 printed so far (its banner lines). */
  serialLog(name: string): Promise<string>;
  /** Connects from the namespace to host:port and returns what the peer sent. */
  tcpRead(host: string, port: number, timeoutMs?: number): Promise<string>;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the libvirt lab needs root; run the lab tests as root');
}

async function fileExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

async function commandExists(cmd: string): Promise<boolean> {
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (await fileExists(join(dir, cmd))) return true;
  }
  return false;
}

async function requireCommands(): Promise<void> {
  const missing: string[] = [];
  for (const cmd of REQUIRED_COMMANDS) if (!(await commandExists(cmd))) missing.push(cmd);
  if (missing.length > 0) throw new Error(`the libvirt lab needs ${missing.join(', ')}; install: apt-get install ${LIBVIRT_PACKAGES.join(' ')}`);
}

export async function namespaceExists(ns: string): Promise<boolean> {
  return fileExists(`/run/netns/${ns}`);
}

async function ensureNamespace(ns: string, create: boolean): Promise<void> {
  if (await namespaceExists(ns)) return;
  if (!create) throw new Error(`network namespace ${ns} does not exist: bring the lab up first (labUp), or pass createNamespace`);
  await runChecked(['ip', 'netns', 'add', ns]);
  await runChecked(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
}

/** The libvirt group, the libvirt-qemu user libvirtd insists on, and the SSH user's membership. */
async function ensureAccounts(): Promise<string | undefined> {
  if ((await runProcess(['getent', 'group', LIBVIRT_GROUP])).code !== 0) await runChecked(['groupadd', '--system', LIBVIRT_GROUP]);
  if (!(await lookupUser('libvirt-qemu'))) {
    await runChecked(['useradd', '--system', '--no-create-home', '--home-dir', '/var/lib/libvirt', '--shell', '/usr/sbin/nologin', 'libvirt-qemu']);
  }
  if (!(await lookupUser(LAB_SSH_USER))) return undefined;
  const groups = (await runChecked(['id', '-nG', LAB_SSH_USER])).trim().split(/\s+/);
  if (!groups.includes(LIBVIRT_GROUP)) await runChecked(['usermod', '--append', '--groups', LIBVIRT_GROUP, LAB_SSH_USER]);
  return LAB_SSH_USER;
}

async function writeConfigs(): Promise<void> {
  await mkdir('/etc/libvirt', { recursive: true });
  const current = await readFile(QEMU_CONF, 'utf8').catch(() => undefined);
  if (current !== undefined && !current.startsWith(QEMU_CONF_MARK) && !(await fileExists(`${QEMU_CONF}.vmdesk-orig`))) {
    await writeFile(`${QEMU_CONF}.vmdesk-orig`, current);
  }
  if (current !== QEMU_CONF_TEXT) await writeFile(QEMU_CONF, QEMU_CONF_TEXT, { mode: 0o600 });
  await writeFile(LIBVIRTD_CONF, LIBVIRTD_CONF_TEXT, { mode: 0o644 });
  for (const d of ['/var/log/libvirt/qemu', '/run/libvirt', '/var/lib/libvirt/qemu', DNSMASQ_STATE]) await mkdir(d, { recursive: true });
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Stops a daemon we started, by its pid file, after checking the pid still is that daemon. */
async function stopDaemon(pidFile: string, comm: string): Promise<void> {
  const pid = await readPid(pidFile);
  if (pid !== undefined && (await processName(pid)) === comm) await killPids([pid], 5000);
  await rm(pidFile, { force: true });
}

/** The lab domains and network that libvirtd still knows, destroyed and undefined; by UUID, never by name. */
async function removeLabObjects(ns: string): Promise<void> {
  const uuids = (await virshChecked(ns, ['list', '--all', '--uuid'])).split('\n').map((s) => s.trim()).filter(isLabUuid);
  for (const uuid of uuids) {
    await virshIn(ns, ['destroy', '--domain', uuid]);
    await virshChecked(ns, ['undefine', '--domain', uuid]);
  }
  const nets = (await virshChecked(ns, ['net-list', '--all', '--uuid'])).split('\n').map((s) => s.trim()).filter(Boolean);
  for (const uuid of nets) {
    const name = (await virshChecked(ns, ['net-name', uuid])).trim();
    // The seed's network must be called `default`, so a foreign one of that name is replaced too.
    if (!isLabUuid(uuid) && name !== NETWORK_NAME) continue;
    await virshIn(ns, ['net-destroy', uuid]);
    await virshIn(ns, ['net-undefine', uuid]);
  }
  // dnsmasq's lease database outlives the network; a stale lease must not count as a guest being up.
  for (const f of await readdir(DNSMASQ_STATE).catch(() => [] as string[])) {
    if (f.startsWith(`${BRIDGE}.`) || f.startsWith(`${NETWORK_NAME}.`)) await rm(join(DNSMASQ_STATE, f), { force: true });
  }
}

async function libvirtdAnswers(ns: string): Promise<boolean> {
  const r = await virshIn(ns, ['version'], { timeoutMs: 5000 }).catch(() => undefined);
  return r?.code === 0;
}

/** QEMU and dnsmasq outlive libvirtd; when it is gone, their pid files under /run/libvirt are all that is left. */
async function killOrphans(): Promise<void> {
  const pids: number[] = [];
  for (const [dir, comm] of [
    ['/run/libvirt/qemu', 'qemu-system-x86'],
    ['/run/libvirt/network', 'dnsmasq'],
  ] as const) {
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if (!f.endsWith('.pid')) continue;
      const pid = await readPid(join(dir, f));
      if (pid !== undefined && (await processName(pid))?.startsWith(comm.slice(0, 15))) pids.push(pid);
    }
  }
  await killPids(pids);
}

async function tailLog(path: string, lines = 20): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function startDaemons(ns: string): Promise<void> {
  await rm(LIBVIRTD_LOG, { force: true });
  // A killed virtlogd leaves its socket file behind, which would pass the wait below at once.
  await rm(VIRTLOGD_SOCK, { force: true });
  await runChecked(['ip', 'netns', 'exec', ns, 'virtlogd', '--daemon', '--pid-file', VIRTLOGD_PID], { env: hostEnv() });
  await pollUntil(() => fileExists(VIRTLOGD_SOCK), { timeoutMs: 10_000, intervalMs: 50, what: `virtlogd's socket ${VIRTLOGD_SOCK}` });
  await runChecked(['ip', 'netns', 'exec', ns, 'libvirtd', '--daemon', '--config', LIBVIRTD_CONF, '--pid-file', LIBVIRTD_PID], {
    env: hostEnv(),
  });
  await pollUntil(
    async () => {
      const pid = await readPid(LIBVIRTD_PID);
      if (pid !== undefined && (await processName(pid)) === undefined) {
        throw new PollAbortError(`libvirtd exited: ${await tailLog(LIBVIRTD_LOG)}`);
      }
      return libvirtdAnswers(ns);
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'libvirtd to answer `virsh version`' },
  );
}

async function defineObjects(ns: string, image: GuestImage): Promise<void> {
  const xmlDir = join(LIBVIRT_RUN_DIR, 'xml');
  await mkdir(xmlDir, { recursive: true });
  const netFile = join(xmlDir, 'network-default.xml');
  await writeFile(netFile, networkXml());
  await virshChecked(ns, ['net-define', '--file', netFile]);
  await virshChecked(ns, ['net-start', '--network', NETWORK_UUID]);
  for (const d of LAB_DOMAINS) {
    // Files are named by UUID: a domain name may hold any character but '/'.
    const file = join(xmlDir, `${d.uuid}.xml`);
    await writeFile(file, domainXml(d, image));
    await virshChecked(ns, ['define', '--file', file]);
  }
}

/** The IPv4 address of `mac` in `virsh net-dhcp-leases default`, if leased. */
async function leasedIp(ns: string, mac: string): Promise<string | undefined> {
  const out = await virshChecked(ns, ['net-dhcp-leases', '--network', NETWORK_NAME, '--mac', mac]);
  return parseDhcpLeases(out).find((l) => l.mac === mac && l.protocol === 'ipv4')?.ipAddress;
}

async function startGuests(ns: string, timeoutMs: number): Promise<Map<string, string>> {
  await mkdir(join(LIBVIRT_RUN_DIR, 'serial'), { recursive: true, mode: 0o755 });
  await mkdir(join(LIBVIRT_RUN_DIR, 'vnc'), { recursive: true, mode: 0o755 });
  const running = LAB_DOMAINS.filter((d) => d.isRunning);
  for (const d of running) {
    await rm(serialLogPath(d), { force: true });
    await virshChecked(ns, ['start', '--domain', d.uuid]);
  }
  // Let the lab's SSH user reach the unix-socket consoles: QEMU creates them root-owned 0755,
  // and libvirt's own per-domain directory (for <listen type='socket'/>) is root-only.
  const libvirtGid = Number((await runChecked(['getent', 'group', LIBVIRT_GROUP])).split(':')[2]);
  for (const d of running.filter((x) => x.graphics === 'socket-attr' || x.graphics === 'socket-listen')) {
    let path = vncSocketPath(d);
    if (d.graphics === 'socket-listen') {
      const xml = await virshChecked(ns, ['dumpxml', '--domain', d.uuid]);
      const m = /<listen type='socket' socket='([^']+)'/.exec(xml);
      if (!m?.[1]) throw new Error(`no socket in the live XML of ${JSON.stringify(d.name)}`);
      path = m[1].replaceAll('&apos;', "'").replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"');
      const dir = path.slice(0, path.lastIndexOf('/'));
      await chown(dir, 0, libvirtGid);
      await chmod(dir, 0o750);
    }
    const socket = path;
    await pollUntil(() => fileExists(socket), { timeoutMs: 10_000, what: socket });
    await chown(socket, 0, libvirtGid);
    await chmod(socket, 0o660);
  }
  const addresses = new Map<string, string>();
  await Promise.all(
    running.map(async (d) => {
      const ip = await pollUntil(() => leasedIp(ns, d.mac), { timeoutMs, intervalMs: 500, what: `a DHCP lease for ${JSON.stringify(d.name)} (${d.mac})` }).catch(
        async (e: unknown) => {
          throw new Error(`${(e as Error).message}; its console said: ${await tailLog(serialLogPath(d), 10)}`, { cause: e });
        },
      );
      // Proves the guest is up (not a stale lease) and leaves a neighbour entry for `ip neigh`.
      await pollUntil(
        async () => {
          const banner = await tcpReadIn(ns, ip, 3389, 2000);
          return banner.trim() === `RDP-LAB ${d.name}` ? true : undefined;
        },
        { timeoutMs, intervalMs: 500, what: `${JSON.stringify(d.name)} to answer on ${ip}:3389` },
      );
      addresses.set(d.name, ip);
    }),
  );
  return addresses;
}

/**
 * Brings libvirt up in the KVM-host namespace with the lab's network and
 * domains; see the module comment. Cold (no cached guest image) it downloads
 * the kernel package once.
 */
export async function libvirtUp(opts: LibvirtUpOptions = {}): Promise<Hypervisor> {
  const started = Date.now();
  requireRoot();
  await requireCommands();
  const ns = opts.namespace ?? NAMESPACES.host;
  await ensureNamespace(ns, opts.createNamespace ?? false);
  await mkdir(LIBVIRT_RUN_DIR, { recursive: true, mode: 0o755 });
  await stopLeftovers();

  const imageStarted = Date.now();
  const image = await ensureGuestImage(opts.cacheDir ?? GUEST_CACHE_DIR);
  const imageMs = Date.now() - imageStarted;

  const sshUser = await ensureAccounts();
  await writeConfigs();
  await startDaemons(ns);
  await removeLabObjects(ns);
  await defineObjects(ns, image);

  const bootStarted = Date.now();
  const addresses = opts.startGuests === false ? new Map<string, string>() : await startGuests(ns, opts.bootTimeoutMs ?? 240_000);
  const bootMs = Date.now() - bootStarted;

  return {
    uri: LIBVIRT_URI,
    namespace: ns,
    image,
    network: { name: NETWORK_NAME, uuid: NETWORK_UUID, bridge: BRIDGE, gateway: GATEWAY },
    domains: LAB_DOMAINS,
    addresses,
    users: { group: LIBVIRT_GROUP, sshUser },
    timings: { totalMs: Date.now() - started, imageMs, bootMs, imageCached: image.isFromCache },
    virsh: (args, o) => virshIn(ns, args, o),
    run: (argv, o) => runInNamespace(ns, argv, o),
    async serialLog(name) {
      const d = LAB_DOMAINS.find((x) => x.name === name);
      if (!d) throw new Error(`no lab domain ${JSON.stringify(name)}`);
      return readFile(serialLogPath(d), 'utf8').catch(() => '');
    },
    tcpRead: (host, port, timeoutMs) => tcpReadIn(ns, host, port, timeoutMs),
  };
}

/** Whatever an earlier run left: our daemons (found by pid file), and QEMU/dnsmasq if libvirtd died under them. */
async function stopLeftovers(): Promise<void> {
  await stopDaemon(LIBVIRTD_PID, 'libvirtd');
  await stopDaemon(VIRTLOGD_PID, 'virtlogd');
  await killOrphans();
  // Not ours, but in the way: two libvirtd cannot share /run/libvirt.
  const foreign = await readPid('/run/libvirtd.pid');
  if (foreign !== undefined && (await processName(foreign)) === 'libvirtd') {
    throw new Error(`a libvirtd the lab did not start is running (pid ${foreign}); stop it first`);
  }
}

/**
 * Destroys and undefines the lab's domains and network, stops libvirtd and
 * virtlogd; safe to call at any time, also after the namespace is gone.
 */
export async function libvirtDown(opts: { namespace?: string } = {}): Promise<void> {
  requireRoot();
  const ns = opts.namespace ?? NAMESPACES.host;
  if ((await namespaceExists(ns)) && (await libvirtdAnswers(ns))) {
    await removeLabObjects(ns).catch(() => undefined);
  }
  await stopLeftovers();
}
