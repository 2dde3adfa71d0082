/**
 * The lab's libvirt objects: the NAT network `default` and one domain per
 * kind of console vmdesk must handle (the seed's win2016 on loopback, one
 * exposed on 0.0.0.0, one with a VNC password, two on unix sockets, one shut
 * off, hostile names). Every lab object has a UUID starting with LAB_UUID_PREFIX,
 * so cleanup finds them without ever passing a name through anything.
 */
import type { GuestImage } from './guest-image.js';
import { NAME_PARAM } from './guest-image.js';

/** "vmd\0" "la" "b": marks a UUID as the lab's. */
export const LAB_UUID_PREFIX = '766d6400-6c61-4b00-8000-';
export const NETWORK_NAME = 'default';
export const NETWORK_UUID = `${LAB_UUID_PREFIX}0000000000ff`;
export const BRIDGE = 'virbr0';
export const GATEWAY = '192.168.122.1';
/** Where the lab keeps what QEMU writes (serial logs, VNC sockets): outside test/lab/.state, which the lab's cleanup removes. */
export const LIBVIRT_RUN_DIR = '/run/vmd-libvirt';
/** The seed's VM and address (`arp -n` showed 192.168.122.217 52:54:00:fc:b9:e6). */
export const WIN2016_MAC = '52:54:00:fc:b9:e6';
export const WIN2016_IP = '192.168.122.217';
/** At most 8 characters: QEMU's VNC authentication truncates longer ones and libvirt refuses them. */
export const VNC_PASSWORD = 'Lab-pw1';

export type GraphicsKind =
  /** vnc, autoport, no listen: libvirt fills in qemu.conf's vnc_listen (127.0.0.1). */
  | 'loopback'
  /** vnc, autoport, listen='127.0.0.1' written out in the definition. */
  | 'loopback-address'
  /** vnc, autoport, listen='0.0.0.0': reachable from anywhere. */
  | 'exposed'
  /** vnc, autoport, loopback, with passwd. */
  | 'password'
  /** vnc, autoport, listen='0.0.0.0', with passwd: exposed, but behind VNC's weak password. */
  | 'exposed-password'
  /** vnc socket='/path' attribute. */
  | 'socket-attr'
  /** vnc with a <listen type='socket'/> child: libvirt picks the path. */
  | 'socket-listen'
  /** vnc with <listen type='network' network='default'/>: resolves to the bridge address. */
  | 'network-listen'
  /** spice on a fixed loopback port (only ever defined, never started). */
  | 'spice';

export interface LabDomain {
  name: string;
  uuid: string;
  mac: string;
  graphics: GraphicsKind;
  /** Started by libvirtUp; the others stay shut off. */
  isRunning: boolean;
  /** DHCP hostname option the guest sends; only for names that are valid hostnames. */
  hostname?: string;
  /** `ADDR:PORT`: the guest's port 3389 relays there (a real RDP server) instead of answering with a banner. */
  rdpRelay?: string;
}

export const HOSTILE_NAMES = [`x'; touch pwned; echo '`, '$(touch pwned2)'] as const;

export const LAB_DOMAINS: readonly LabDomain[] = [
  { name: 'win2016', uuid: `${LAB_UUID_PREFIX}000000002016`, mac: WIN2016_MAC, graphics: 'loopback', isRunning: true, hostname: 'win2016' },
  { name: 'win2012', uuid: `${LAB_UUID_PREFIX}000000002012`, mac: '52:54:00:6c:ab:12', graphics: 'loopback', isRunning: false },
  { name: 'win2019', uuid: `${LAB_UUID_PREFIX}000000002019`, mac: '52:54:00:6c:ab:19', graphics: 'exposed', isRunning: true, hostname: 'win2019' },
  { name: 'rhel8', uuid: `${LAB_UUID_PREFIX}000000000008`, mac: '52:54:00:6c:ab:08', graphics: 'password', isRunning: true, hostname: 'rhel8' },
  { name: 'debian12', uuid: `${LAB_UUID_PREFIX}000000000012`, mac: '52:54:00:6c:ab:0c', graphics: 'socket-attr', isRunning: true, hostname: 'debian12' },
  { name: HOSTILE_NAMES[0], uuid: `${LAB_UUID_PREFIX}0000000000a1`, mac: '52:54:00:6c:ab:a1', graphics: 'socket-listen', isRunning: true },
  { name: HOSTILE_NAMES[1], uuid: `${LAB_UUID_PREFIX}0000000000a2`, mac: '52:54:00:6c:ab:a2', graphics: 'network-listen', isRunning: true },
  // A name virsh could mistake for an option.
  { name: '-rf', uuid: `${LAB_UUID_PREFIX}0000000000a3`, mac: '52:54:00:6c:ab:a3', graphics: 'spice', isRunning: false },
];

export function isLabUuid(uuid: string): boolean {
  return uuid.toLowerCase().startsWith(LAB_UUID_PREFIX);
}

function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** Path of the VNC unix socket of a `socket-attr` domain (named by UUID: the name may hold anything). */
export function vncSocketPath(d: LabDomain): string {
  return `${LIBVIRT_RUN_DIR}/vnc/${d.uuid}.sock`;
}

/** Path of the file the guest's ttyS0 is written to. */
export function serialLogPath(d: LabDomain): string {
  return `${LIBVIRT_RUN_DIR}/serial/${d.uuid}.log`;
}

function graphicsXml(d: LabDomain): string {
  switch (d.graphics) {
    case 'loopback':
      return `<graphics type='vnc' port='-1' autoport='yes' keymap='en-us'/>`;
    case 'loopback-address':
      return `<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>`;
    case 'exposed':
      return `<graphics type='vnc' port='-1' autoport='yes' listen='0.0.0.0'/>`;
    case 'password':
      return `<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='${xmlText(VNC_PASSWORD)}'/>`;
    case 'exposed-password':
      return `<graphics type='vnc' port='-1' autoport='yes' listen='0.0.0.0' passwd='${xmlText(VNC_PASSWORD)}'/>`;
    case 'socket-attr':
      return `<graphics type='vnc' socket='${xmlText(vncSocketPath(d))}'/>`;
    case 'socket-listen':
      return `<graphics type='vnc'><listen type='socket'/></graphics>`;
    case 'network-listen':
      return `<graphics type='vnc' port='-1' autoport='yes'><listen type='network' network='${NETWORK_NAME}'/></graphics>`;
    case 'spice':
      return `<graphics type='spice' port='5930' autoport='no' listen='127.0.0.1'/>`;
  }
}

/** A persistent domain booting the lab's kernel + initramfs; the guest reads its name from the cmdline. */
export function domainXml(d: LabDomain, image: GuestImage): string {
  const cmdline = [
    'console=tty0',
    'console=ttyS0,115200',
    'quiet',
    'panic=-1',
    `${NAME_PARAM}=${Buffer.from(d.name, 'utf8').toString('base64')}`,
    ...(d.hostname ? [`vmdlab.host=${d.hostname}`] : []),
    ...(d.rdpRelay ? [`vmdlab.rdp=${d.rdpRelay}`] : []),
  ].join(' ');
  return `<domain type='qemu'>
  <name>${xmlText(d.name)}</name>
  <uuid>${d.uuid}</uuid>
  <description>vmdesk lab guest</description>
  <memory unit='MiB'>96</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${xmlText(image.kernel)}</kernel>
    <initrd>${xmlText(image.initrd)}</initrd>
    <cmdline>${xmlText(cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='network'>
      <mac address='${d.mac}'/>
      <source network='${NETWORK_NAME}'/>
      <model type='e1000'/>
    </interface>
    <serial type='file'>
      <source path='${xmlText(serialLogPath(d))}'/>
      <target port='0'/>
    </serial>
    ${graphicsXml(d)}
    <video><model type='vga'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** The seed's NAT network; win2016 gets the seed's address from a DHCP host entry, the rest from the range. */
export function networkXml(): string {
  return `<network>
  <name>${NETWORK_NAME}</name>
  <uuid>${NETWORK_UUID}</uuid>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='on' delay='0'/>
  <mac address='52:54:00:6c:ff:01'/>
  <ip address='${GATEWAY}' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
      <host mac='${WIN2016_MAC}' name='win2016' ip='${WIN2016_IP}'/>
    </dhcp>
  </ip>
</network>
`;
}
