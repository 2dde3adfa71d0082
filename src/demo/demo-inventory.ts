/**
 * The made-up VMs and network of the demo hypervisor, as plain data. A demo:
 * none of these machines exists; the demo hypervisor (hypervisor.ts) renders
 * them in libvirt 9's output formats and the demo site gives each running
 * one a DemoConsole. Never used by a real code path.
 */

/** How a demo domain's VNC console is configured (libvirt `<graphics type='vnc'>`). */
export type DemoVnc =
  /** On TCP: `listen` is the address; `port` a fixed port (autoport='no'), else libvirt picks one from 5900 up. */
  | { kind: 'tcp'; listen: string; port?: number }
  /** On a unix socket (`<listen type='socket'>`). */
  | { kind: 'socket'; path: string };

export interface DemoDomain {
  name: string;
  uuid: string;
  /** The `<description>`; says it is a demo. */
  description: string;
  /** Shapes the XML the way virt-install would (disk bus, NIC model, clock) and the console's look. */
  os: 'windows' | 'linux';
  memoryMiB: number;
  vcpus: number;
  /** Whether the domain is running when the demo hypervisor starts. */
  isRunning: boolean;
  mac: string;
  /** The libvirt network its one NIC is plugged into. */
  network: string;
  /** The address the network's DHCP server leases to it while it runs. */
  ip: string;
  vnc: DemoVnc;
  /**
   * A VNC password (shown as a `passwd` attribute only with --security-info).
   * None of the built-in VMs has one: the demo console does not ask for it.
   */
  vncPassword?: string;
  /** The demo console's desktop colour (CSS hex). */
  background: string;
  /** The guest ignores ACPI power-button requests: `virsh shutdown` never completes (only `destroy` stops it). */
  ignoresShutdown?: boolean;
}

/** A DHCP host reservation (`<host>` of `<dhcp>`); libvirt needs a MAC or a name besides the address. */
export interface DemoReservation {
  mac?: string;
  name?: string;
  ip: string;
}

export interface DemoNetwork {
  name: string;
  uuid: string;
  bridge: string;
  mac: string;
  /** The host's address on the bridge, which is also the guests' gateway. */
  address: string;
  netmask: string;
  prefix: number;
  dhcpStart: string;
  dhcpEnd: string;
  /** DHCP reservations (`<host>` elements of `<dhcp>`), in document order. */
  reservations: DemoReservation[];
}

/** A QEMU process on the demo host as its process list shows it (/proc/PID: real uid, user, cmdline). */
export interface DemoQemuProcess {
  pid: number;
  uid: number;
  user: string;
  argv: string[];
}

export interface DemoInventory {
  domains: DemoDomain[];
  networks: DemoNetwork[];
  /**
   * QEMU processes started by hand, not by libvirt: no `virsh` command shows
   * them, only the process list (`vmdesk audit`). Nothing listens behind them.
   */
  handStartedQemus: DemoQemuProcess[];
  /** The text of /etc/libvirt/qemu.conf. */
  qemuConf: string;
}

/** The demo hypervisor's name as vmdesk shows it. */
export const DEMO_HOST_NAME = 'demo-kvm';

const DEMO_DOMAINS: readonly DemoDomain[] = [
  {
    name: 'win2016',
    uuid: 'cf033973-fff1-4b6f-afb3-e3276b4205f1',
    description: 'vmdesk demo: Windows Server 2016 (not a real VM)',
    os: 'windows',
    memoryMiB: 4096,
    vcpus: 2,
    isRunning: true,
    mac: '52:54:00:27:76:52',
    network: 'default',
    ip: '192.168.122.217',
    vnc: { kind: 'tcp', listen: '127.0.0.1' },
    background: '#1e5aa8',
  },
  {
    name: 'ubuntu-desktop',
    uuid: '97200831-9c83-4f63-a6a8-529cbc85d4d3',
    description: 'vmdesk demo: Ubuntu 22.04 desktop (not a real VM)',
    os: 'linux',
    memoryMiB: 4096,
    vcpus: 2,
    isRunning: true,
    mac: '52:54:00:b8:72:16',
    network: 'default',
    ip: '192.168.122.38',
    vnc: { kind: 'tcp', listen: '127.0.0.1' },
    background: '#77216f',
  },
  {
    name: 'debian12-socket',
    uuid: 'a754d6da-243f-423c-97ef-6ec7836231b0',
    description: 'vmdesk demo: Debian 12 with its console on a unix socket (not a real VM)',
    os: 'linux',
    memoryMiB: 2048,
    vcpus: 1,
    isRunning: true,
    mac: '52:54:00:a8:88:aa',
    network: 'default',
    ip: '192.168.122.43',
    vnc: { kind: 'socket', path: '/var/lib/libvirt/qemu/debian12-socket.vnc' },
    background: '#a80030',
  },
  {
    name: 'legacy-exposed',
    uuid: '6ede338f-c252-440e-be84-ab58e1595951',
    description: 'vmdesk demo: an old guest whose console listens on every address (not a real VM)',
    os: 'linux',
    memoryMiB: 1024,
    vcpus: 1,
    isRunning: true,
    mac: '52:54:00:65:16:b3',
    network: 'default',
    ip: '192.168.122.56',
    // The seed's setup: a fixed port on 0.0.0.0, reachable by anyone who can reach the host.
    vnc: { kind: 'tcp', listen: '0.0.0.0', port: 5902 },
    background: '#8a6d00',
  },
  {
    name: 'win2012',
    uuid: 'e9305d52-81e5-43f8-a8b9-e0d023a03981',
    description: 'vmdesk demo: Windows Server 2012 R2, shut off (not a real VM)',
    os: 'windows',
    memoryMiB: 4096,
    vcpus: 2,
    isRunning: false,
    mac: '52:54:00:4c:45:eb',
    network: 'default',
    ip: '192.168.122.112',
    vnc: { kind: 'tcp', listen: '127.0.0.1' },
    background: '#00707a',
  },
];

const DEMO_NETWORKS: readonly DemoNetwork[] = [
  {
    name: 'default',
    uuid: 'e4851092-ba39-4add-84d1-3880f13f7421',
    bridge: 'virbr0',
    mac: '52:54:00:9c:d0:93',
    address: '192.168.122.1',
    netmask: '255.255.255.0',
    prefix: 24,
    dhcpStart: '192.168.122.2',
    dhcpEnd: '192.168.122.254',
    reservations: [{ mac: '52:54:00:27:76:52', name: 'win2016', ip: '192.168.122.217' }],
  },
];

const DEMO_HAND_STARTED_QEMUS: readonly DemoQemuProcess[] = [
  {
    // Someone's scratch VM, started from a shell with the seed's habit of `-vnc 0.0.0.0:N`: libvirt knows nothing of it.
    pid: 1873,
    uid: 1000,
    user: 'demo',
    argv: ['qemu-system-x86_64', '-name', 'scratch', '-enable-kvm', '-m', '2048', '-smp', '2', '-drive', 'file=/home/demo/scratch.qcow2,if=virtio', '-nic', 'user,model=virtio-net-pci', '-vnc', '0.0.0.0:7', '-daemonize'],
  },
];

/**
 * A short /etc/libvirt/qemu.conf in the upstream file's words
 * (fixtures/libvirt/qemu.conf-upstream-default-excerpt): VNC on loopback, no TLS, no default password.
 */
const DEMO_QEMU_CONF = `# Master configuration file for the QEMU driver.
# All settings described here are optional - if omitted, sensible
# defaults are used.
#
# (vmdesk demo: a made-up host's file, shortened.)

# VNC is configured to listen on 127.0.0.1 by default.
# To make it listen on all public interfaces, uncomment
# this next option.
#
# NB, strong recommendation to enable TLS + x509 certificate
# verification when allowing public access
#
vnc_listen = "127.0.0.1"


# Enable use of TLS encryption on the VNC server. This requires
# a VNC client which supports the VeNCrypt protocol extension.
# Examples include vinagre, virt-viewer, virt-manager and vencrypt
# itself. UltraVNC, RealVNC, TightVNC do not support this
#
# It is necessary to setup CA and issue a server certificate
# before enabling this.
#
#vnc_tls = 1


# The default VNC password. Only 8 bytes are significant for
# VNC passwords. This parameter is only used if the per-domain
# XML config does not already provide a password. To allow
# access without passwords, leave this commented out. An empty
# string will still enable passwords, but be rejected by QEMU,
# effectively preventing any use of VNC. Obviously change this
# example here before you set this.
#
#vnc_password = "XYZ12345"


# SPICE is configured to listen on 127.0.0.1 by default.
# To make it listen on all public interfaces, uncomment
# this next option.
#
# NB, strong recommendation to enable TLS + x509 certificate
# verification when allowing public access
#
#spice_listen = "0.0.0.0"
`;

/** A fresh copy of the demo inventory (the demo hypervisor changes its own copy when a VM starts). */
export function demoInventory(): DemoInventory {
  return structuredClone({ domains: [...DEMO_DOMAINS], networks: [...DEMO_NETWORKS], handStartedQemus: [...DEMO_HAND_STARTED_QEMUS], qemuConf: DEMO_QEMU_CONF });
}
