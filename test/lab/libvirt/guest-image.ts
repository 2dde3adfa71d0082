/**
 * The lab's guest: Debian's kernel plus a busybox initramfs, no disk. It
 * insmods e1000, takes a DHCP lease from libvirt's dnsmasq, answers TCP 3389
 * with `RDP-LAB <name>` and prints `VMDESK-LAB GUEST <name> IP <ip>` on the
 * VGA console (seen over VNC) and on ttyS0 (a file the lab can read).
 * Keys typed on the VGA console (over VNC) are echoed there.
 *
 * Built once into a cache outside the checkout's .state (the lab's own
 * cleanup removes .state); rebuilt when the recipe below changes.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '../exec.js';
import { buildCpio, type CpioEntry } from './cpio.js';
import { fileExists } from '../files.js';

export const GUEST_CACHE_DIR = '/var/cache/vmdesk-lab/guest';
const BUSYBOX = '/bin/busybox';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** e.g. linux-image-6.1.0-56-amd64 */
  kernelPackage: string;
  /** Nothing had to be downloaded or built. */
  isFromCache: boolean;
}

/** The kernel cmdline parameter carrying the guest's name, base64 so any name survives the kernel's parser. */
export const NAME_PARAM = 'vmdlab.name';

/** PID 1. `set -f`: /proc/cmdline words are split but never globbed. */
const INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
set -f
host=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    ${NAME_PARAM}=*) printf '%s' "\${arg#${NAME_PARAM}=}" | base64 -d > /etc/vmdlab-name ;;
    vmdlab.host=*) host="\${arg#vmdlab.host=}" ;;
    vmdlab.rdp=*) printf '%s' "\${arg#vmdlab.rdp=}" > /etc/vmdlab-rdp ;;
  esac
done
name="$(cat /etc/vmdlab-name)"
ip link set lo up
insmod /lib/modules/e1000.ko
ip link set eth0 up
if [ -n "$host" ]; then
  udhcpc -f -i eth0 -s /etc/udhcpc.script -x "hostname:$host" >/dev/ttyS0 2>&1 &
else
  udhcpc -f -i eth0 -s /etc/udhcpc.script >/dev/ttyS0 2>&1 &
fi
# vmdlab.rdp=ADDR:PORT: port 3389 relays to a real RDP server there (test/lab/rdp-server.ts); else a banner.
if [ -s /etc/vmdlab-rdp ]; then
  nc -ll -p 3389 -e /bin/rdp-relay &
else
  nc -ll -p 3389 -e /bin/rdp-banner &
fi
# A VT drops keyboard input unless it is open: a reader keeps tty1 open in cooked mode, so the
# line discipline echoes typed keys onto the VGA screen (the browser tests type and look).
cat </dev/tty1 >/dev/null &
# The screen is cleared whenever the address changes, so once DHCP has answered it shows only
# banners that carry the address (the browser tests read the most common row).
shown=
while :; do
  ip="$(cat /run/ip 2>/dev/null || echo none)"
  if [ "$ip" != "$shown" ]; then
    printf '\\033[2J\\033[H' > /dev/tty0
    shown="$ip"
  fi
  line="VMDESK-LAB GUEST $name IP $ip"
  printf '%s\\n' "$line" > /dev/tty0
  printf '%s\\n' "$line" > /dev/ttyS0
  sleep 3
done
`;

/** udhcpc's event hook: applies the lease (busybox passes the prefix length in $mask). */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then ip route replace default via "\${router%% *}" dev "$interface"; fi
    printf '%s\\n' "$ip" > /run/ip
    ;;
esac
exit 0
`;

const RDP_BANNER = `#!/bin/sh
printf 'RDP-LAB %s\\n' "$(cat /etc/vmdlab-name)"
`;

/** One relayed connection: stdin/stdout (from nc -e) to the RDP server named on the cmdline. */
const RDP_RELAY = `#!/bin/sh
set -f
exec nc $(tr ':' ' ' < /etc/vmdlab-rdp)
`;


/** The kernel package `linux-image-amd64` currently depends on (needs `apt-get update` once). */
async function currentKernelPackage(): Promise<string> {
  const out = await runChecked(['apt-cache', 'depends', 'linux-image-amd64']);
  const m = /Depends:\s+(linux-image-[0-9][^\s]*-amd64)\b/.exec(out);
  if (!m?.[1]) throw new Error(`cannot find the kernel package behind linux-image-amd64 (run apt-get update): ${out.trim()}`);
  return m[1];
}

/** Pipes `dpkg-deb --fsys-tarfile DEB` into `tar -x` for only the members we need (the full package is ~400 MB). */
function extractMembers(deb: string, dir: string, patterns: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '-C', dir, '--wildcards', ...patterns], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    dpkg.stderr.on('data', (b: Buffer) => (err += b.toString()));
    tar.stderr.on('data', (b: Buffer) => (err += b.toString()));
    dpkg.stdout.pipe(tar.stdin);
    tar.stdin.on('error', () => {});
    let dpkgCode: number | null = null;
    dpkg.on('error', reject);
    tar.on('error', reject);
    dpkg.on('close', (c) => (dpkgCode = c));
    tar.on('close', (c) => {
      if (c === 0 && (dpkgCode === 0 || dpkgCode === null)) resolve();
      else reject(new Error(`extracting ${deb} failed (dpkg-deb ${dpkgCode}, tar ${c}): ${err.trim()}`));
    });
  });
}

async function findFile(dir: string, test: (name: string) => boolean): Promise<string | undefined> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && test(entry.name)) return join(entry.parentPath, entry.name);
  }
  return undefined;
}

async function isKernelDir(dir: string): Promise<boolean> {
  return (await fileExists(join(dir, 'vmlinuz'))) && (await fileExists(join(dir, 'e1000.ko')));
}

/**
 * Downloads the kernel package once and keeps `vmlinuz` and an uncompressed
 * `e1000.ko` (busybox insmod reads no .xz). A kernel already in the cache is
 * used as is, so a warm start needs neither apt nor the network.
 */
async function ensureKernel(cacheDir: string): Promise<{ pkg: string; vmlinuz: string; e1000: string; isFromCache: boolean }> {
  const cached = (await readdir(cacheDir)).filter((n) => /^linux-image-[^/]*-amd64$/.test(n))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  for (const name of cached) {
    if (await isKernelDir(join(cacheDir, name))) return { pkg: name, vmlinuz: join(cacheDir, name, 'vmlinuz'), e1000: join(cacheDir, name, 'e1000.ko'), isFromCache: true };
  }
  const pkg = await currentKernelPackage();
  const dir = join(cacheDir, pkg);
  const vmlinuz = join(dir, 'vmlinuz');
  const e1000 = join(dir, 'e1000.ko');

  const work = await mkdtemp(join(cacheDir, `${pkg}.tmp-`));
  try {
    await runChecked(['apt-get', 'download', '-q', '-o', 'APT::Sandbox::User=root', pkg], { cwd: work, timeoutMs: 300_000 });
    const deb = (await readdir(work)).find((n) => n.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
    const tree = join(work, 'tree');
    await mkdir(tree);
    await extractMembers(join(work, deb), tree, ['./boot/vmlinuz-*', '*/e1000/e1000.ko*']);
    const kernelFile = await findFile(tree, (n) => n.startsWith('vmlinuz-'));
    const moduleFile = await findFile(tree, (n) => /^e1000\.ko(\.xz|\.zst)?$/.test(n));
    if (!kernelFile || !moduleFile) throw new Error(`${pkg} has no vmlinuz or e1000.ko`);
    const out = join(work, 'out');
    await mkdir(out);
    await rename(kernelFile, join(out, 'vmlinuz'));
    if (moduleFile.endsWith('.xz')) {
      await writeFile(join(out, 'e1000.ko'), await runBinary([BUSYBOX, 'xz', '-dc', moduleFile]));
    } else if (moduleFile.endsWith('.zst')) {
      await writeFile(join(out, 'e1000.ko'), await runBinary(['zstd', '-dc', moduleFile]));
    } else {
      await rename(moduleFile, join(out, 'e1000.ko'));
    }
    await rm(dir, { recursive: true, force: true });
    await rename(out, dir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { pkg, vmlinuz, e1000, isFromCache: false };
}

function runBinary(argv: readonly string[]): Promise<Buffer> {
  const [cmd, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd ?? '', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (c) => (c === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${argv.join(' ')} exited ${c}: ${err.trim()}`))));
  });
}

function initramfsEntries(busybox: Buffer, e1000: Buffer): CpioEntry[] {
  return [
    ...['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'lib', 'lib/modules'].map(
      (path): CpioEntry => ({ kind: 'dir', path }),
    ),
    // The kernel opens /dev/console for PID 1 before devtmpfs is mounted.
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', data: INIT, mode: 0o755 },
    { kind: 'file', path: 'etc/udhcpc.script', data: UDHCPC_SCRIPT, mode: 0o755 },
    { kind: 'file', path: 'bin/rdp-banner', data: RDP_BANNER, mode: 0o755 },
    { kind: 'file', path: 'bin/rdp-relay', data: RDP_RELAY, mode: 0o755 },
    { kind: 'file', path: 'lib/modules/e1000.ko', data: e1000, mode: 0o644 },
  ];
}

/**
 * Returns the kernel and initramfs, building them if the cache lacks them or
 * holds an older recipe. Needs `apt-get update` to have run once (for
 * `apt-get download`), busybox-static, dpkg-deb and tar.
 */
export async function ensureGuestImage(cacheDir = GUEST_CACHE_DIR): Promise<GuestImage> {
  await mkdir(cacheDir, { recursive: true, mode: 0o755 });
  const kernel = await ensureKernel(cacheDir);
  const busybox = await readFile(BUSYBOX).catch((e: unknown) => {
    throw new Error(`${BUSYBOX} is missing: install busybox-static`, { cause: e });
  });
  const e1000 = await readFile(kernel.e1000);
  const recipe = createHash('sha256').update(INIT).update(UDHCPC_SCRIPT).update(RDP_BANNER).update(RDP_RELAY).update(busybox).update(e1000).digest('hex').slice(0, 16);
  const initrd = join(cacheDir, `initrd-${recipe}.cpio`);
  const isFromCache = kernel.isFromCache && (await fileExists(initrd));
  if (!isFromCache) {
    const tmp = `${initrd}.tmp-${process.pid}`;
    await writeFile(tmp, buildCpio(initramfsEntries(busybox, e1000)));
    await rename(tmp, initrd);
    for (const old of await readdir(cacheDir)) {
      if (old.startsWith('initrd-') && join(cacheDir, old) !== initrd) await rm(join(cacheDir, old), { force: true });
    }
  }
  return { kernel: kernel.vmlinuz, initrd, kernelPackage: kernel.pkg, isFromCache };
}
