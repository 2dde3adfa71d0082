/**
 * The demo host's QEMU processes as vmdesk's process-list script
 * (QEMU_PROCESS_SCRIPT in libvirt/qemu-processes.ts) prints them: a `P PID
 * UID USER` line and the cmdline in `od -An -v -tx1` hex per process, then
 * `E`. A running demo VM looks like a QEMU that libvirt 9 started on Debian 12
 * (compare fixtures/libvirt/qemu-processes-lab.txt); a hand-started one is
 * taken from the demo inventory as it is. Pure; a demo, never used by a real code path.
 */
import type { DemoDomain, DemoQemuProcess } from './demo-inventory.js';

/** Debian's libvirt-qemu user, which libvirt runs system QEMUs as. */
const LIBVIRT_QEMU_UID = 64055;
const LIBVIRT_QEMU_USER = 'libvirt-qemu';
const VNC_PORT_MIN = 5900;

/** What libvirt assigned when the domain started. */
export interface QemuRuntime {
  pid: number;
  id: number;
  /** The TCP port of a TCP console. */
  port?: number;
}

/** QemuOpts' escaping (QEMU docs, "Option syntax"): a comma inside a value is written twice. */
function optValue(s: string): string {
  return s.replace(/,/g, ',,');
}

/** The `-vnc` value libvirt 9 writes (qemuBuildGraphicsVNCCommandLine): `HOST:DISPLAY` or `vnc=unix:PATH`, then its options. */
function vncArg(d: DemoDomain, rt: QemuRuntime): string {
  const vnc = d.vnc;
  const main = vnc.kind === 'socket' ? `vnc=unix:${optValue(vnc.path)}` : `${vnc.listen.includes(':') ? `[${vnc.listen}]` : vnc.listen}:${(rt.port ?? VNC_PORT_MIN) - VNC_PORT_MIN}`;
  return `${main}${d.vncPassword !== undefined ? ',password=on' : ''},audiodev=audio1`;
}

/** The command line of the QEMU that libvirt runs for a demo domain (q35, KVM, the devices domainXml shows). */
export function libvirtQemuProcess(d: DemoDomain, rt: QemuRuntime): DemoQemuProcess {
  const win = d.os === 'windows';
  // libvirt's per-domain directory: domain-ID-NAME with the name cut to 20 characters.
  const dir = `/var/lib/libvirt/qemu/domain-${rt.id}-${d.name.slice(0, 20)}`;
  const json = (o: Record<string, unknown>) => JSON.stringify(o);
  const argv = [
    '/usr/bin/qemu-system-x86_64',
    '-name',
    `guest=${optValue(d.name)},debug-threads=on`,
    '-S',
    '-object',
    json({ 'qom-type': 'secret', id: 'masterKey0', format: 'raw', file: `${dir}/master-key.aes` }),
    '-machine',
    'pc-q35-7.2,usb=off,vmport=off,dump-guest-core=off,memory-backend=pc.ram',
    '-accel',
    'kvm',
    '-cpu',
    'host,migratable=on',
    '-m',
    String(d.memoryMiB),
    '-object',
    json({ 'qom-type': 'memory-backend-ram', id: 'pc.ram', size: d.memoryMiB * 1024 * 1024 }),
    '-overcommit',
    'mem-lock=off',
    '-smp',
    `${d.vcpus},sockets=${d.vcpus},cores=1,threads=1`,
    '-uuid',
    d.uuid,
    '-no-user-config',
    '-nodefaults',
    '-chardev',
    'socket,id=charmonitor,fd=31,server=on,wait=off',
    '-mon',
    'chardev=charmonitor,id=monitor,mode=control',
    '-rtc',
    `base=${win ? 'localtime' : 'utc'},driftfix=slew`,
    '-global',
    'kvm-pit.lost_tick_policy=delay',
    '-no-hpet',
    '-no-shutdown',
    '-boot',
    'strict=on',
    '-blockdev',
    json({ driver: 'file', filename: `/var/lib/libvirt/images/${d.name}.qcow2`, 'node-name': 'libvirt-1-storage', 'auto-read-only': true, discard: 'unmap' }),
    '-blockdev',
    json({ 'node-name': 'libvirt-1-format', 'read-only': false, discard: 'unmap', driver: 'qcow2', file: 'libvirt-1-storage' }),
    '-device',
    json(win ? { driver: 'ide-hd', bus: 'ide.0', drive: 'libvirt-1-format', id: 'sata0-0-0', bootindex: 1 } : { driver: 'virtio-blk-pci', bus: 'pci.4', addr: '0x0', drive: 'libvirt-1-format', id: 'virtio-disk0', bootindex: 1 }),
    '-netdev',
    json({ type: 'tap', fd: '34', vhost: true, vhostfd: '36', id: 'hostnet0' }),
    '-device',
    json({ driver: win ? 'e1000e' : 'virtio-net-pci', netdev: 'hostnet0', id: 'net0', mac: d.mac, bus: 'pci.1', addr: '0x0' }),
    '-chardev',
    'pty,id=charserial0',
    '-device',
    json({ driver: 'isa-serial', chardev: 'charserial0', id: 'serial0', index: 0 }),
    '-audiodev',
    json({ id: 'audio1', driver: 'none' }),
    '-vnc',
    vncArg(d, rt),
    '-device',
    json({ driver: 'VGA', id: 'video0', vgamem_mb: 16, bus: 'pcie.0', addr: '0x1' }),
    '-device',
    json({ driver: 'virtio-balloon-pci', id: 'balloon0', bus: 'pci.5', addr: '0x0' }),
    '-sandbox',
    'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
    '-msg',
    'timestamp=on',
  ];
  return { pid: rt.pid, uid: LIBVIRT_QEMU_UID, user: LIBVIRT_QEMU_USER, argv };
}

/** `od -An -v -tx1`: sixteen bytes a line, each as a space and two hex digits. */
function odHex(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 16) {
    out += `${[...bytes.subarray(i, i + 16)].map((b) => ` ${b.toString(16).padStart(2, '0')}`).join('')}\n`;
  }
  return out;
}

/** QEMU_PROCESS_SCRIPT's output for these processes, in the order the shell's `/proc/[0-9]*` glob lists them. */
export function renderQemuProcessList(processes: readonly DemoQemuProcess[]): string {
  const sorted = [...processes].sort((a, b) => (String(a.pid) < String(b.pid) ? -1 : String(a.pid) > String(b.pid) ? 1 : 0));
  // /proc/PID/cmdline is every argument followed by a NUL.
  const records = sorted.map((p) => `P ${p.pid} ${p.uid} ${p.user}\n${odHex(Buffer.from(p.argv.map((a) => `${a}\0`).join(''), 'utf8'))}`);
  return `${records.join('')}E\n`;
}
