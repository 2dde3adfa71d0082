/**
 * The demo hypervisor: an exec handler for DemoSshServer that answers the
 * commands vmdesk sends to a KVM host (the inventory script, virsh, the
 * process list, the edit scripts, `ip neigh`, `cat`, `test`) from the demo
 * inventory, in libvirt 9's real output formats (see fixtures/libvirt), so
 * vmdesk's real parsers read it unchanged. Like libvirt it keeps two
 * definitions of a running domain: the live one it started with and the
 * persistent one `virsh define` replaces, which applies at the next start.
 * A demo: nothing is ever run, no shell is involved, command lines are only
 * split into words and files live in memory. Never used by a real code path.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { QEMU_CONF_PATH } from '../libvirt/edits.js';
import { domainEventsScript } from '../libvirt/domain-events.js';
import { DEFAULT_URI } from '../libvirt/virsh-argv.js';
import { QEMU_PROCESS_SCRIPT } from '../libvirt/qemu-processes.js';
import { splitCommandLine } from './command-line.js';
import { demoInventory, type DemoDomain, type DemoInventory, type DemoNetwork, type DemoQemuProcess } from './demo-inventory.js';
import { updateDhcpHosts, type DhcpHostCommand } from './dhcp-host-update.js';
import { readDomainDefinition } from './domain-define.js';
import { BACKUP_DIR, recognizeHostScript } from './host-scripts.js';
import { libvirtQemuProcess, renderQemuProcessList } from './qemu-process-list.js';
import type { ExecContext, ExecHandler, ForwardEndpoint } from './ssh-server.js';

export { splitCommandLine } from './command-line.js';

/** What a command printed and how it exited. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DemoHypervisorOptions {
  inventory?: DemoInventory;
  /** The libvirt URI the demo answers to (default `qemu:///system`). */
  uri?: string;
  /**
   * Serves the console of a domain that starts running (given its live
   * definition) and says where it listens; `stop` ends it when the domain
   * stops. Left out (unit tests), domains run with no console behind them.
   */
  startConsole?: (domain: DemoDomain) => Promise<DemoConsoleEndpoint>;
  /** The clock for lease expiry times. */
  now?: () => Date;
  /** How long a guest takes to power off after `virsh shutdown` (default 1000 ms). */
  shutdownDelayMs?: number;
  /** The SSH user's home directory, where vmdesk's backups go (default /home/demo). */
  home?: string;
  log?: (line: string) => void;
}

/** Where a running domain's console is served, and how to stop serving it. */
export interface DemoConsoleEndpoint extends ForwardEndpoint {
  stop?: () => Promise<void>;
}

/** A domain as the demo hypervisor runs it: its definitions plus what libvirt assigns at start. */
interface LiveDomain {
  /** The persistent definition (`dumpxml --inactive`), which the next start uses. */
  def: DemoDomain;
  /** The definition it runs with, from its start until it stops (`dumpxml` while running). */
  live?: DemoDomain;
  state: 'running' | 'shut off';
  reason: string;
  id?: number;
  /** The TCP port of a running TCP console. */
  port?: number;
  /** The vnetN tap device, the pty, the network port id and the QEMU pid of a running domain. */
  vnet?: number;
  pty?: number;
  portId?: string;
  pid?: number;
  console?: DemoConsoleEndpoint;
  /** The guest's pending power-off after `virsh shutdown`. */
  shutdownTimer?: NodeJS.Timeout;
}

/** A network's persistent definition and the running one (demo networks are always active). */
interface LiveNetwork {
  def: DemoNetwork;
  live: DemoNetwork;
}

const DEFAULT_HOME = '/home/demo';
const DEFAULT_SHUTDOWN_DELAY_MS = 1000;
const VNC_PORT_MIN = 5900;
/** Where the first QEMU the demo starts gets its pid; each later one a bit further on. */
const FIRST_QEMU_PID = 2214;
/** `virsh version` of Debian 12, as captured in fixtures/libvirt/version.txt. */
const VERSION_TEXT = 'Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\nUsing API: QEMU 9.0.0\nRunning hypervisor: QEMU 7.2.22\n\n';
/** Debian's libvirt-qemu user and kvm group, as the DAC seclabel of a running domain shows them. */
const DAC_LABEL = '+64055:+994';
const INVENTORY_MARK = '# vmdesk inventory';
/** What virsh's sed in the inventory script puts in place of a console password. */
const REDACTED = '(redacted)';

const ok = (stdout: string): CommandResult => ({ code: 0, stdout, stderr: '' });
const fail = (stderr: string, code = 1): CommandResult => ({ code, stdout: '', stderr });

// ---- XML in libvirt's style ------------------------------------------------

interface XmlElement {
  name: string;
  attrs: [string, string][];
  children: (XmlElement | string)[];
}

/** An element; attributes whose value is undefined are left out, like libvirt leaves out unset ones. */
function el(name: string, attrs: Record<string, string | number | undefined> = {}, ...children: (XmlElement | string | false | undefined)[]): XmlElement {
  return {
    name,
    attrs: Object.entries(attrs).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)] as [string, string]])),
    children: children.filter((c): c is XmlElement | string => c !== false && c !== undefined && c !== ''),
  };
}

/** libvirt's virBufferEscapeString: the same five entities in text and in attributes. */
function escapeXml(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** Two-space indentation and single-quoted attributes, as virsh prints XML. */
function renderXml(e: XmlElement, indent = ''): string {
  const open = `${indent}<${e.name}${e.attrs.map(([k, v]) => ` ${k}='${escapeXml(v)}'`).join('')}`;
  if (e.children.length === 0) return `${open}/>\n`;
  const only = e.children[0];
  if (e.children.length === 1 && typeof only === 'string') return `${open}>${escapeXml(only)}</${e.name}>\n`;
  const inner = e.children.map((c) => (typeof c === 'string' ? `${indent}  ${escapeXml(c)}\n` : renderXml(c, `${indent}  `))).join('');
  return `${open}>\n${inner}${indent}</${e.name}>\n`;
}

function pci(bus: number, slot: number, fn = 0, multifunction?: 'on'): XmlElement {
  const hex = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;
  return el('address', { type: 'pci', domain: '0x0000', bus: hex(bus), slot: hex(slot), function: `0x${fn}`, multifunction });
}

/** A domain's XML as `virsh dumpxml` prints it: live (with id, aliases, ports) or the persistent (inactive) definition. */
function domainXml(d: LiveDomain, opts: { inactive: boolean; securityInfo: boolean }): string {
  const live = d.state === 'running' && !opts.inactive;
  const def = live ? (d.live ?? d.def) : d.def;
  const win = def.os === 'windows';
  const alias = (name: string) => live && el('alias', { name });
  const rootPort = (index: number, port: number, slot: number, fn: number) =>
    el('controller', { type: 'pci', index, model: 'pcie-root-port' }, el('model', { name: 'pcie-root-port' }), el('target', { chassis: index, port: `0x${port.toString(16)}` }), alias(`pci.${index}`), pci(0, slot, fn, fn === 0 ? 'on' : undefined));
  const vnc = def.vnc;
  const graphics =
    vnc.kind === 'socket'
      ? el('graphics', { type: 'vnc', socket: vnc.path, passwd: opts.securityInfo ? def.vncPassword : undefined }, el('listen', { type: 'socket', socket: vnc.path }))
      : el(
          'graphics',
          {
            type: 'vnc',
            port: vnc.port ?? (live ? d.port : -1),
            autoport: vnc.port === undefined ? 'yes' : 'no',
            listen: vnc.listen,
            passwd: opts.securityInfo ? def.vncPassword : undefined,
          },
          el('listen', { type: 'address', address: vnc.listen }),
        );
  const pty = live ? `/dev/pts/${d.pty}` : undefined;
  const timers = [el('timer', { name: 'rtc', tickpolicy: 'catchup' }), el('timer', { name: 'pit', tickpolicy: 'delay' }), el('timer', { name: 'hpet', present: 'no' }), win && el('timer', { name: 'hypervclock', present: 'yes' })];
  const doc = el(
    'domain',
    { type: 'kvm', id: live ? d.id : undefined },
    el('name', {}, def.name),
    el('uuid', {}, def.uuid),
    def.description !== '' && el('description', {}, def.description),
    el('memory', { unit: 'KiB' }, String(def.memoryMiB * 1024)),
    el('currentMemory', { unit: 'KiB' }, String(def.memoryMiB * 1024)),
    el('vcpu', { placement: 'static' }, String(def.vcpus)),
    live && el('resource', {}, el('partition', {}, '/machine')),
    el('os', {}, el('type', { arch: 'x86_64', machine: 'pc-q35-7.2' }, 'hvm'), el('boot', { dev: 'hd' })),
    el('features', {}, el('acpi'), el('apic'), win && el('hyperv', { mode: 'custom' }, el('relaxed', { state: 'on' }), el('vapic', { state: 'on' }), el('spinlocks', { state: 'on', retries: 8191 }))),
    el('cpu', { mode: 'host-passthrough', check: 'none', migratable: 'on' }),
    el('clock', { offset: win ? 'localtime' : 'utc' }, ...timers),
    el('on_poweroff', {}, 'destroy'),
    el('on_reboot', {}, 'restart'),
    el('on_crash', {}, 'destroy'),
    el('pm', {}, el('suspend-to-mem', { enabled: 'no' }), el('suspend-to-disk', { enabled: 'no' })),
    el(
      'devices',
      {},
      el('emulator', {}, '/usr/bin/qemu-system-x86_64'),
      el(
        'disk',
        { type: 'file', device: 'disk' },
        el('driver', { name: 'qemu', type: 'qcow2', discard: 'unmap' }),
        el('source', { file: `/var/lib/libvirt/images/${def.name}.qcow2`, index: live ? 1 : undefined }),
        live && el('backingStore'),
        el('target', win ? { dev: 'sda', bus: 'sata' } : { dev: 'vda', bus: 'virtio' }),
        alias(win ? 'sata0-0-0' : 'virtio-disk0'),
        win ? el('address', { type: 'drive', controller: 0, bus: 0, target: 0, unit: 0 }) : pci(4, 0),
      ),
      el('controller', { type: 'usb', index: 0, model: 'qemu-xhci', ports: 15 }, alias('usb'), pci(2, 0)),
      el('controller', { type: 'pci', index: 0, model: 'pcie-root' }, alias('pcie.0')),
      rootPort(1, 0x10, 2, 0),
      rootPort(2, 0x11, 2, 1),
      rootPort(3, 0x12, 2, 2),
      rootPort(4, 0x13, 2, 3),
      rootPort(5, 0x14, 2, 4),
      el('controller', { type: 'sata', index: 0 }, alias('ide'), pci(0, 0x1f, 2)),
      el(
        'interface',
        { type: 'network' },
        el('mac', { address: def.mac }),
        el('source', { network: def.network, portid: live ? d.portId : undefined, bridge: live ? 'virbr0' : undefined }),
        live && el('target', { dev: `vnet${d.vnet}` }),
        el('model', { type: win ? 'e1000e' : 'virtio' }),
        alias('net0'),
        pci(1, 0),
      ),
      el('serial', { type: 'pty' }, pty && el('source', { path: pty }), el('target', { type: 'isa-serial', port: 0 }, el('model', { name: 'isa-serial' })), alias('serial0')),
      el('console', { type: 'pty', tty: pty }, pty && el('source', { path: pty }), el('target', { type: 'serial', port: 0 }), alias('serial0')),
      el('input', { type: 'tablet', bus: 'usb' }, alias('input0'), el('address', { type: 'usb', bus: 0, port: 1 })),
      el('input', { type: 'mouse', bus: 'ps2' }, alias('input1')),
      el('input', { type: 'keyboard', bus: 'ps2' }, alias('input2')),
      graphics,
      el('audio', { id: 1, type: 'none' }),
      el('video', {}, el('model', { type: 'vga', vram: 16384, heads: 1, primary: 'yes' }), alias('video0'), pci(0, 1)),
      el('memballoon', { model: 'virtio' }, alias('balloon0'), pci(5, 0)),
    ),
    live && el('seclabel', { type: 'dynamic', model: 'apparmor', relabel: 'yes' }, el('label', {}, `libvirt-${def.uuid}`), el('imagelabel', {}, `libvirt-${def.uuid}`)),
    live && el('seclabel', { type: 'dynamic', model: 'dac', relabel: 'yes' }, el('label', {}, DAC_LABEL), el('imagelabel', {}, DAC_LABEL)),
  );
  // virsh prints the document and then a newline of its own.
  return `${renderXml(doc)}\n`;
}

function networkXml(n: DemoNetwork, connections: number): string {
  const doc = el(
    'network',
    { connections: connections > 0 ? connections : undefined },
    el('name', {}, n.name),
    el('uuid', {}, n.uuid),
    el('forward', { mode: 'nat' }, el('nat', {}, el('port', { start: 1024, end: 65535 }))),
    el('bridge', { name: n.bridge, stp: 'on', delay: 0 }),
    el('mac', { address: n.mac }),
    el(
      'ip',
      { address: n.address, netmask: n.netmask },
      el('dhcp', {}, el('range', { start: n.dhcpStart, end: n.dhcpEnd }), ...n.reservations.map((r) => el('host', { mac: r.mac, name: r.name, ip: r.ip }))),
    ),
  );
  return `${renderXml(doc)}\n`;
}

// ---- Tables in virsh's style -------------------------------------------------

/**
 * virsh's vshTable (tools/vsh-table.c): a leading space, every column but the
 * last padded to its widest cell plus three spaces, and a rule as long as all
 * the padded columns together.
 */
function vshTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => ` ${cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]! + 3) : c)).join('')}\n`;
  return `${line(header)}${'-'.repeat(widths.reduce((a, w) => a + w + 3, 0))}\n${rows.map(line).join('')}`;
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** `YYYY-MM-DD HH:MM:SS` in local time, as net-dhcp-leases prints an expiry. */
function localTime(d: Date): string {
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

// ---- virsh's command grammar -------------------------------------------------

interface CommandSpec {
  /** Options that take no value. */
  flags: string[];
  /** Options that take a value; the first ones may also be given positionally, in this order. */
  values: string[];
  positional: string[];
  required: string[];
}

const COMMANDS: Record<string, CommandSpec> = {
  version: { flags: ['daemon'], values: [], positional: [], required: [] },
  list: { flags: ['all', 'inactive', 'uuid', 'name', 'table', 'state-running', 'state-paused', 'state-shutoff', 'state-other'], values: [], positional: [], required: [] },
  domstate: { flags: ['reason'], values: ['domain'], positional: ['domain'], required: ['domain'] },
  dumpxml: { flags: ['inactive', 'security-info', 'update-cpu', 'migratable'], values: ['domain'], positional: ['domain'], required: ['domain'] },
  domdisplay: { flags: ['include-password'], values: ['domain', 'type'], positional: ['domain'], required: ['domain'] },
  domifaddr: { flags: ['full'], values: ['domain', 'interface', 'source'], positional: ['domain', 'interface'], required: ['domain'] },
  start: { flags: ['console', 'paused', 'autodestroy', 'bypass-cache', 'force-boot', 'reset-nvram'], values: ['domain'], positional: ['domain'], required: ['domain'] },
  shutdown: { flags: [], values: ['domain', 'mode'], positional: ['domain'], required: ['domain'] },
  destroy: { flags: ['graceful', 'remove-logs'], values: ['domain'], positional: ['domain'], required: ['domain'] },
  define: { flags: ['validate'], values: ['file'], positional: ['file'], required: ['file'] },
  'net-list': { flags: ['all', 'inactive', 'uuid', 'name', 'table', 'persistent', 'transient', 'autostart', 'no-autostart'], values: [], positional: [], required: [] },
  'net-dumpxml': { flags: ['inactive'], values: ['network'], positional: ['network'], required: ['network'] },
  'net-dhcp-leases': { flags: [], values: ['network', 'mac'], positional: ['network', 'mac'], required: ['network'] },
  'net-info': { flags: [], values: ['network'], positional: ['network'], required: ['network'] },
  'net-update': {
    flags: ['config', 'live', 'current'],
    values: ['network', 'command', 'section', 'xml', 'parent-index'],
    positional: ['network', 'command', 'section', 'xml'],
    required: ['network', 'command', 'section', 'xml'],
  },
};

/** virsh net-update's section names (virNetworkSection); the demo models ip-dhcp-host. */
const NET_UPDATE_SECTIONS = ['bridge', 'domain', 'ip', 'ip-dhcp-host', 'ip-dhcp-range', 'forward', 'forward-interface', 'forward-pf', 'portgroup', 'dns-host', 'dns-txt', 'dns-srv'];
const NET_UPDATE_COMMANDS: Record<string, DhcpHostCommand> = { add: 'add-last', 'add-last': 'add-last', 'add-first': 'add-first', modify: 'modify', delete: 'delete' };

type ParsedOptions = { flags: Set<string>; values: Map<string, string> };

/** virsh's option parsing (`--opt value`, `--opt=value`, bare words for the positional options), with its error texts. */
function parseOptions(command: string, spec: CommandSpec, args: string[]): ParsedOptions | CommandResult {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const positional = [...spec.positional];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (spec.flags.includes(name) && eq < 0) {
        flags.add(name);
      } else if (spec.values.includes(name)) {
        const v = eq < 0 ? args[++i] : a.slice(eq + 1);
        if (v === undefined) return fail(`error: expected syntax: --${name} <string>\n`);
        values.set(name, v);
        const at = positional.indexOf(name);
        if (at >= 0) positional.splice(at, 1);
      } else {
        return fail(`error: command '${command}' doesn't support option --${name}\n`);
      }
    } else {
      const name = positional.shift();
      if (name === undefined) return fail(`error: unexpected data '${a}'\n`);
      values.set(name, a);
    }
  }
  for (const r of spec.required) if (!values.has(r)) return fail(`error: command '${command}' requires <${r}> option\n`);
  return { flags, values };
}

// ---- The hypervisor ----------------------------------------------------------

/** What a command reads as its standard input: the bytes, or a reader that waits for the client's EOF. */
export type StdinSource = string | Buffer | (() => Promise<Buffer>);

/** Ten random letters and digits, as `mktemp` names /tmp/tmp.XXXXXXXXXX. */
function mktempName(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return `/tmp/tmp.${[...randomBytes(10)].map((b) => chars[b % chars.length]).join('')}`;
}

/** A made-up KVM host answering vmdesk's commands; `exec` plugs it into a DemoSshServer. */
export class DemoHypervisor {
  readonly uri: string;
  private readonly domains: LiveDomain[];
  /** The open `virsh event` streams (streamEvents). */
  private readonly eventWriters = new Set<(line: string) => void>();
  private readonly networks: LiveNetwork[];
  private readonly handStartedQemus: DemoQemuProcess[];
  private readonly qemuConf: string;
  private readonly opts: DemoHypervisorOptions;
  /** The host's files that vmdesk writes and reads back (backups, define's temporary file), by absolute path. */
  private readonly files = new Map<string, string>();
  private nextId = 1;
  private nextVnet = 0;
  private nextPty = 1;
  private nextPid = FIRST_QEMU_PID;
  private isStopped = false;

  constructor(opts: DemoHypervisorOptions = {}) {
    this.opts = opts;
    this.uri = opts.uri ?? DEFAULT_URI;
    const inv = opts.inventory ?? demoInventory();
    this.domains = inv.domains.map((def) => ({ def, state: 'shut off', reason: 'unknown' }));
    this.networks = inv.networks.map((n) => ({ def: n, live: structuredClone(n) }));
    this.handStartedQemus = inv.handStartedQemus;
    this.qemuConf = inv.qemuConf;
    // Autoport keeps clear of the fixed ports of the domains that boot with it.
    const initial = this.domains.filter((d) => d.def.isRunning);
    const fixed = new Set(initial.flatMap((d) => (d.def.vnc.kind === 'tcp' && d.def.vnc.port !== undefined ? [d.def.vnc.port] : [])));
    for (const d of initial) this.markRunning(d, 'booted', fixed);
  }

  /** The handler for DemoSshServer's `exec` option. */
  readonly exec: ExecHandler = async (ctx) => {
    if (ctx.command === domainEventsScript(this.uri)) return this.streamEvents(ctx);
    const r = await this.run(ctx.command, ctx.stdin);
    if (r.stdout) ctx.stdout(r.stdout);
    if (r.stderr) ctx.stderr(r.stderr);
    return r.code;
  };

  /**
   * `virsh event --all --loop` as domainEventsScript runs it: the started
   * line, then one lifecycle line per change in virsh 9's words, and the
   * answers to syncCommand, until the channel closes (the EXIT trap's kill).
   */
  private async streamEvents(ctx: ExecContext): Promise<number> {
    ctx.stdout('vmdesk-events-started\n');
    const write = (line: string) => ctx.stdout(`${line}\n`);
    // /bin/sh's next commands: only syncCommand's echo is vmdesk's to send.
    let input = '';
    ctx.onInput((d) => {
      input += d.toString('utf8');
      let nl: number;
      while ((nl = input.indexOf('\n')) >= 0) {
        const sync = /^echo (vmdesk-events-sync \d+)$/.exec(input.slice(0, nl));
        input = input.slice(nl + 1);
        if (sync) write(sync[1]!);
      }
    });
    this.eventWriters.add(write);
    try {
      await ctx.closed;
    } finally {
      this.eventWriters.delete(write);
    }
    return 143;
  }

  private lifecycleEvent(d: LiveDomain, detail: string): void {
    for (const write of this.eventWriters) write(`event 'lifecycle' for domain '${d.def.name}': ${detail}`);
  }

  /** Start the consoles of the domains that run from the outset (needs `startConsole`). */
  async serveConsoles(): Promise<void> {
    await Promise.all(this.domains.filter((d) => d.state === 'running' && !d.console).map((d) => this.attachConsole(d)));
  }

  /** Cancel pending guest power-offs; the consoles are the site's to stop. */
  stop(): void {
    this.isStopped = true;
    for (const d of this.domains) {
      clearTimeout(d.shutdownTimer);
      delete d.shutdownTimer;
    }
  }

  /** Where a forwarded TCP connection to `host:port` on this host lands: a running VM's console, or nowhere. */
  routeTcp(host: string, port: number): ForwardEndpoint | undefined {
    const d = this.domains.find((x) => {
      const vnc = x.live?.vnc;
      if (x.state !== 'running' || vnc?.kind !== 'tcp' || x.port !== port) return false;
      const listen = vnc.listen;
      if (listen === '0.0.0.0' || listen === '::') return isLoopbackAddress(host) || host === listen;
      return listen === host || (isLoopbackAddress(listen) && isLoopbackAddress(host));
    });
    return d?.console && { host: d.console.host, port: d.console.port };
  }

  /** Where a forwarded connection to the unix socket `path` lands: a running VM's console, or nowhere. */
  routeUnix(path: string): ForwardEndpoint | undefined {
    const c = this.runningSocket(path)?.console;
    return c && { host: c.host, port: c.port };
  }

  /** The running domain whose console socket is `path` (QEMU creates it at start and removes it at exit). */
  private runningSocket(path: string): LiveDomain | undefined {
    return this.domains.find((x) => x.state === 'running' && x.live?.vnc.kind === 'socket' && x.live.vnc.path === path);
  }

  /** Answers one exec request's command line; only a command that reads stdin waits for it. */
  async run(command: string, stdin: StdinSource = ''): Promise<CommandResult> {
    const readStdin = async (): Promise<string> => (typeof stdin === 'function' ? (await stdin()).toString('utf8') : stdin.toString());
    const commands = splitCommandLine(command.trim());
    if (!commands) return this.script(command, command, readStdin);
    let out = '';
    let err = '';
    let code = 0;
    for (const argv of commands) {
      const r = await this.runArgv(argv, command, readStdin);
      out += r.stdout;
      err += r.stderr;
      code = r.code;
      if (code !== 0) break;
    }
    return { code, stdout: out, stderr: err };
  }

  private unavailable(command: string): CommandResult {
    const shown = command.trim().length > 200 ? `${command.trim().slice(0, 200)}...` : command.trim();
    return fail(`demo hypervisor: ${JSON.stringify(shown)} is not available in the demo\n`, 127);
  }

  private async runArgv(argv: string[], line: string, readStdin: () => Promise<string>): Promise<CommandResult> {
    const [cmd, ...args] = argv;
    const is = (...words: string[]) => args.length === words.length && words.every((w, i) => args[i] === w);
    switch (cmd) {
      case 'virsh':
        return this.virsh(args);
      case 'sh':
        if (args.length === 2 && args[0] === '-c') return this.script(args[1]!, line, readStdin);
        break;
      case 'ip':
        if (is('neigh') || is('neigh', 'show') || is('neighbour', 'show')) return ok(this.ipNeigh());
        break;
      case 'cat': {
        const r = args.length === 1 ? this.cat(args[0]!) : undefined;
        if (r) return r;
        break;
      }
      case 'test':
        // The files the demo knows: its consoles' sockets (while their VM runs) and the files vmdesk wrote.
        if (args.length === 2 && ['-e', '-S', '-r', '-w'].includes(args[0]!)) {
          const exists = this.runningSocket(args[1]!) !== undefined || (args[0] !== '-S' && this.files.has(args[1]!));
          return { code: exists ? 0 : 1, stdout: '', stderr: '' };
        }
        break;
    }
    return this.unavailable(line);
  }

  /** The scripts vmdesk sends (as they are, or as `sh -c SCRIPT`): the inventory, the process list, and the edit scripts. */
  private async script(script: string, line: string, readStdin: () => Promise<string>): Promise<CommandResult> {
    if (script.startsWith(INVENTORY_MARK)) return ok(this.inventory(script));
    if (script === QEMU_PROCESS_SCRIPT) return ok(this.qemuProcessList());
    const tempPath = mktempName();
    const known = recognizeHostScript(script, tempPath);
    if (known?.kind === 'backup') {
      const path = `${this.opts.home ?? DEFAULT_HOME}/${BACKUP_DIR}/${known.name}`;
      if (this.files.has(path)) return fail(`sh: 1: cannot create ${path}: File exists\n`, 2); // set -C
      this.files.set(path, await readStdin());
      return ok(`${path}\n`);
    }
    if (known?.kind === 'with-temp-file') {
      this.files.set(tempPath, await readStdin());
      try {
        const [cmd, ...args] = known.argv;
        // The wrapped command may be virsh only: anything else would be a guess at what the line means.
        if (cmd !== 'virsh') return this.unavailable(line);
        return await this.virsh(args);
      } finally {
        this.files.delete(tempPath);
      }
    }
    return this.unavailable(line);
  }

  /**
   * `cat FILE`: what vmdesk wrote, the host's qemu.conf, or the kernel's ARP
   * table; a missing file where vmdesk writes is cat's error, any other path
   * undefined (not modelled: a real host has files the demo cannot guess).
   */
  private cat(path: string): CommandResult | undefined {
    if (path === '/proc/net/arp') return ok(this.procNetArp());
    if (path === QEMU_CONF_PATH) return ok(this.qemuConf);
    const text = this.files.get(path);
    if (text !== undefined) return ok(text);
    const backups = `${this.opts.home ?? DEFAULT_HOME}/${BACKUP_DIR}/`;
    return path.startsWith(backups) || path.startsWith('/tmp/') ? fail(`cat: ${path}: No such file or directory\n`) : undefined;
  }

  // ---- virsh ----

  private async virsh(argv: string[]): Promise<CommandResult> {
    let uri: string | undefined;
    let i = 0;
    for (; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '-c' || a === '--connect') uri = argv[++i];
      else if (a.startsWith('--connect=')) uri = a.slice('--connect='.length);
      else if (a === '-q' || a === '--quiet' || a === '-r' || a === '--readonly') continue;
      else if (a.startsWith('-')) return fail(`error: unsupported option '${a}'. See --help.\n`);
      else break;
    }
    const connectError = this.connectError(uri ?? this.uri);
    const command = argv[i];
    if (command === undefined) return this.unavailable(`virsh ${argv.join(' ')}`);
    const spec = COMMANDS[command];
    if (!spec) return fail(`error: unknown command: '${command}'\n`);
    if (connectError) return fail(connectError);
    const parsed = parseOptions(command, spec, argv.slice(i + 1));
    if ('code' in parsed) return parsed;
    return this.virshCommand(command, parsed);
  }

  private connectError(uri: string): string | undefined {
    if (uri === this.uri) return undefined;
    if (uri === 'qemu:///session') return "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/run/user/1000/libvirt/virtqemud-sock': No such file or directory\n";
    return `error: failed to connect to the hypervisor\nerror: no connection driver available for ${uri}\n`;
  }

  private async virshCommand(command: string, o: ParsedOptions): Promise<CommandResult> {
    const domainArg = o.values.get('domain');
    const networkArg = o.values.get('network');
    if (domainArg !== undefined) {
      const d = this.lookupDomain(domainArg, { byId: command !== 'start' });
      if (!d) return fail(`error: failed to get domain '${domainArg}'\n`);
      return this.domainCommand(command, d, o);
    }
    if (networkArg !== undefined) {
      // vshCommandOptNetworkBy: a UUID first, then a name.
      const n = this.networks.find((x) => x.def.uuid === networkArg.toLowerCase()) ?? this.networks.find((x) => x.def.name === networkArg);
      if (!n) return fail(`error: failed to get network '${networkArg}'\nerror: Network not found: no network with matching name '${networkArg}'\n`);
      return this.networkCommand(command, n, o);
    }
    switch (command) {
      case 'version':
        return ok(VERSION_TEXT);
      case 'list':
        return ok(this.list(o.flags));
      case 'net-list':
        return ok(this.netList(o.flags));
      case 'define':
        return this.define(o.values.get('file')!);
    }
    return fail(`error: unknown command: '${command}'\n`);
  }

  /**
   * virsh's lookup order (vshLookupDomainBy): an ID (what virStrToLong_i takes: leading blanks and a
   * sign allowed), then a UUID (36 characters that virUUIDParse reads: 32 hex digits, '-' or ' '
   * between pairs), then the name. `start` skips the ID (an inactive domain has none).
   */
  private lookupDomain(s: string, opts: { byId: boolean }): LiveDomain | undefined {
    const id = /^\s*[+-]?\d+$/.test(s) ? Number(s.trim()) : NaN;
    const byId = opts.byId && id >= 0 ? this.domains.find((d) => d.state === 'running' && d.id === id) : undefined;
    const hex = s.trim().replace(/[- ]/g, '');
    const byUuid = s.length === 36 && /^[0-9a-f]{32}$/i.test(hex) ? this.domains.find((d) => d.def.uuid.replace(/-/g, '') === hex.toLowerCase()) : undefined;
    return byId ?? byUuid ?? this.domains.find((d) => d.def.name === s);
  }

  private async domainCommand(command: string, d: LiveDomain, o: ParsedOptions): Promise<CommandResult> {
    const running = d.state === 'running';
    const cur = d.live ?? d.def;
    const name = d.def.name;
    const notRunning = (verb: string) => fail(`error: Failed to ${verb} domain '${name}'\nerror: Requested operation is not valid: domain is not running\n`);
    switch (command) {
      case 'domstate':
        return ok(`${d.state}${o.flags.has('reason') ? ` (${d.reason})` : ''}\n\n`);
      case 'dumpxml':
        return ok(domainXml(d, { inactive: o.flags.has('inactive'), securityInfo: o.flags.has('security-info') }));
      case 'domdisplay': {
        if (!running) return fail('error: Domain is not running\n');
        const vnc = cur.vnc;
        if (vnc.kind === 'socket') return ok(`vnc+unix://${vnc.path}\n`);
        // cmdDomDisplay: every-address listens show as localhost, an IPv6 address in brackets.
        const host = vnc.listen === '0.0.0.0' || vnc.listen === '::' ? 'localhost' : vnc.listen.includes(':') ? `[${vnc.listen}]` : vnc.listen;
        return ok(`vnc://${host}:${(d.port ?? VNC_PORT_MIN) - VNC_PORT_MIN}\n`);
      }
      case 'domifaddr': {
        const source = o.values.get('source') ?? 'lease';
        if (!['lease', 'arp', 'agent'].includes(source)) return fail(`error: Unknown data source '${source}'\n`);
        if (!running) return fail('error: Failed to query for interfaces addresses\nerror: Requested operation is not valid: domain is not running\n');
        if (source === 'agent') return fail('error: Failed to query for interfaces addresses\nerror: argument unsupported: QEMU guest agent is not configured\n');
        const net = this.networks.find((n) => n.live.name === cur.network)?.live;
        const header = ` ${'Name'.padEnd(10)} ${'MAC address'.padEnd(20)} ${'Protocol'.padEnd(8)}     Address\n${'-'.repeat(79)}\n`;
        const row = ` ${`vnet${d.vnet}`.padEnd(10)} ${cur.mac.padEnd(17)}    ${'ipv4'.padEnd(12)} ${cur.ip}/${net?.prefix ?? 24}\n`;
        return ok(`${header}${row}\n`);
      }
      case 'start':
        if (running) return fail(`error: Failed to start domain '${name}'\nerror: Requested operation is not valid: domain is already active\n`);
        return this.start(d);
      case 'shutdown': {
        if (!running) return notRunning('shutdown');
        const mode = o.values.get('mode');
        if (mode !== undefined && mode !== 'acpi') return fail(`error: Failed to shutdown domain '${name}'\nerror: argument unsupported: the vmdesk demo hypervisor models only --mode acpi\n`);
        this.requestShutdown(d);
        return ok(`Domain '${name}' is being shutdown\n\n`);
      }
      case 'destroy':
        if (!running) return notRunning('destroy');
        this.markShutOff(d, 'destroyed');
        this.opts.log?.(`demo hypervisor: destroyed ${name}`);
        return ok(`Domain '${name}' destroyed\n\n`);
    }
    return fail(`error: unknown command: '${command}'\n`);
  }

  private networkCommand(command: string, n: LiveNetwork, o: ParsedOptions): CommandResult {
    switch (command) {
      case 'net-dumpxml':
        return ok(o.flags.has('inactive') ? networkXml(n.def, 0) : networkXml(n.live, this.connections(n.live.name)));
      case 'net-dhcp-leases':
        return ok(this.leases(n.live, o.values.get('mac')?.toLowerCase()));
      case 'net-info': {
        // cmdNetworkInfo: each label padded to 15 columns (`%-15s %s`).
        const row = (label: string, value: string) => `${label.padEnd(15)} ${value}\n`;
        return ok(`${row('Name:', n.live.name)}${row('UUID:', n.live.uuid)}${row('Active:', 'yes')}${row('Persistent:', 'yes')}${row('Autostart:', 'yes')}${row('Bridge:', n.live.bridge)}\n`);
      }
      case 'net-update':
        return this.netUpdate(n, o);
    }
    return fail(`error: unknown command: '${command}'\n`);
  }

  private connections(network: string): number {
    return this.domains.filter((d) => d.state === 'running' && d.live?.network === network).length;
  }

  /** `net-update` (cmdNetworkUpdate): --config changes the persistent definition, --live the running network, neither the running one. */
  private netUpdate(n: LiveNetwork, o: ParsedOptions): CommandResult {
    const commandName = o.values.get('command')!;
    const section = o.values.get('section')!;
    const command = NET_UPDATE_COMMANDS[commandName];
    if (command === undefined) return fail(`error: unrecognized command name '${commandName}'\n`);
    if (!NET_UPDATE_SECTIONS.includes(section)) return fail(`error: unrecognized section name '${section}'\n`);
    const isConfig = o.flags.has('config');
    const isLive = o.flags.has('live');
    if (o.flags.has('current') && (isConfig || isLive)) return fail('error: --current must be specified exclusively\n');
    const indexText = o.values.get('parent-index');
    if (indexText !== undefined && !/^-?\d+$/.test(indexText)) return fail(`error: Numeric value '${indexText}' for <parent-index> option is malformed or out of range\n`);
    const failed = (message: string) => fail(`error: Failed to update network ${n.live.name}\nerror: ${message}\n`);
    if (section !== 'ip-dhcp-host') return failed(`this function is not supported by the connection driver: the vmdesk demo hypervisor models only the ip-dhcp-host section`);
    let xml = o.values.get('xml')!;
    if (!xml.startsWith('<')) {
      // virsh reads a --xml that does not start with '<' as a file name.
      const file = this.files.get(xml);
      if (file === undefined) return fail(`error: Failed to open file '${xml}': No such file or directory\n`);
      xml = file;
    }
    const parentIndex = indexText === undefined || Number(indexText) < 0 ? undefined : Number(indexText);
    // Neither flag means the running network (always active here); both are checked before either is changed.
    const targets = isConfig || isLive ? [...(isLive ? [n.live] : []), ...(isConfig ? [n.def] : [])] : [n.live];
    const results = targets.map((t) => updateDhcpHosts(t, command, xml, parentIndex));
    for (const r of results) if (!r.isOk) return failed(r.message);
    targets.forEach((t, i) => {
      const r = results[i]!;
      if (r.isOk) t.reservations = r.reservations;
    });
    const affected = isConfig ? (isLive ? 'persistent config and live state' : 'persistent config') : 'live state';
    this.opts.log?.(`demo hypervisor: net-update ${n.live.name} ${commandName} ip-dhcp-host (${affected})`);
    return ok(`Updated network ${n.live.name} ${affected}\n`);
  }

  /** `define --file FILE`: a new persistent definition; a running domain keeps its live one until it stops. */
  private define(file: string): CommandResult {
    const xml = this.files.get(file);
    if (xml === undefined) return fail(`error: Failed to open file '${file}': No such file or directory\n`);
    const r = readDomainDefinition(xml, {
      domains: this.domains.map((d) => d.def),
      newUuid: () => randomUUID(),
      newMac: () => `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`,
      addressFor: (network, mac) => this.addressFor(network, mac),
    });
    if (!r.isOk) return fail(`error: Failed to define domain from ${file}\nerror: ${r.message}\n`);
    const existing = this.domains.find((d) => d.def.uuid === r.def.uuid);
    if (existing) existing.def = r.def;
    else this.domains.push({ def: r.def, state: 'shut off', reason: 'unknown' });
    this.lifecycleEvent(existing ?? this.domains[this.domains.length - 1]!, existing ? 'Defined Updated' : 'Defined Added');
    this.opts.log?.(`demo hypervisor: defined ${r.def.name}${existing?.state === 'running' ? ' (applies at its next start)' : ''}`);
    return ok(`Domain '${r.def.name}' defined from ${file}\n\n`);
  }

  /** The reserved address of `mac`, else the first address of the DHCP range nobody holds. */
  private addressFor(network: string, mac: string): string {
    const n = this.networks.find((x) => x.live.name === network)?.live;
    if (!n) return '';
    const reserved = n.reservations.find((r) => r.mac?.toLowerCase() === mac);
    if (reserved) return reserved.ip;
    const taken = new Set([...this.domains.flatMap((d) => [d.def.ip, d.live?.ip ?? '']), ...n.reservations.map((r) => r.ip), n.address]);
    const toInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    const toIp = (v: number) => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
    for (let v = toInt(n.dhcpStart); v <= toInt(n.dhcpEnd); v++) if (!taken.has(toIp(v))) return toIp(v);
    return '';
  }

  /** Running domains by id, then the others by name, as `virsh list --all` orders them. */
  private listed(filter: (d: LiveDomain) => boolean): LiveDomain[] {
    const on = this.domains.filter((d) => d.state === 'running' && filter(d)).sort((a, b) => a.id! - b.id!);
    const off = this.domains.filter((d) => d.state !== 'running' && filter(d)).sort((a, b) => (a.def.name < b.def.name ? -1 : 1));
    return [...on, ...off];
  }

  private list(flags: Set<string>): string {
    const states = (['running', 'paused', 'shutoff', 'other'] as const).filter((s) => flags.has(`state-${s}`));
    const wanted = (d: LiveDomain): boolean => {
      const s = d.state === 'running' ? 'running' : 'shutoff';
      if (states.length > 0) return (states as string[]).includes(s);
      if (flags.has('inactive')) return s === 'shutoff';
      return flags.has('all') || s === 'running';
    };
    const ds = this.listed(wanted);
    if (flags.has('uuid') && flags.has('name') && !flags.has('table')) return `${ds.map((d) => `${d.def.uuid} ${d.def.name}\n`).join('')}\n`;
    if (flags.has('uuid') && !flags.has('table')) return `${ds.map((d) => `${d.def.uuid}\n`).join('')}\n`;
    if (flags.has('name') && !flags.has('table')) return `${ds.map((d) => `${d.def.name}\n`).join('')}\n`;
    return `${vshTable(
      ['Id', 'Name', 'State'],
      ds.map((d) => [d.state === 'running' ? String(d.id) : '-', d.def.name, d.state]),
    )}\n`;
  }

  private netList(flags: Set<string>): string {
    const ns = this.networks.map((n) => n.live).sort((a, b) => (a.name < b.name ? -1 : 1));
    if (flags.has('uuid') && !flags.has('table')) return `${ns.map((n) => `${n.uuid}\n`).join('')}\n`;
    if (flags.has('name') && !flags.has('table')) return `${ns.map((n) => `${n.name}\n`).join('')}\n`;
    return `${vshTable(
      ['Name', 'State', 'Autostart', 'Persistent'],
      ns.map((n) => [n.name, 'active', 'yes', 'yes']),
    )}\n`;
  }

  /** dnsmasq's leases of a network: one per running guest on it, an hour long. */
  private leases(n: DemoNetwork, mac: string | undefined): string {
    const now = this.opts.now?.() ?? new Date();
    const rows = this.running()
      .filter(({ live }) => live.network === n.name && (mac === undefined || live.mac === mac))
      .sort((a, b) => (a.live.mac < b.live.mac ? -1 : 1))
      .map(({ d, live }) => [localTime(new Date(now.getTime() + 3_600_000 - (d.id ?? 0) * 37_000)), live.mac, 'ipv4', `${live.ip}/${n.prefix}`, live.name, `01:${live.mac}`]);
    return `${vshTable(['Expiry Time', 'MAC address', 'Protocol', 'IP address', 'Hostname', 'Client ID or DUID'], rows)}\n`;
  }

  /** The running domains with the definitions they run with. */
  private running(): { d: LiveDomain; live: DemoDomain }[] {
    return this.domains.flatMap((d) => (d.state === 'running' ? [{ d, live: d.live ?? d.def }] : []));
  }

  private neighbours(): { ip: string; mac: string; dev: string }[] {
    return this.running().map(({ live }) => ({ ip: live.ip, mac: live.mac, dev: this.networks.find((n) => n.live.name === live.network)?.live.bridge ?? 'virbr0' }));
  }

  /** `ip neigh show` (iproute2 prints a space after the state). */
  private ipNeigh(): string {
    return this.neighbours()
      .map((n) => `${n.ip} dev ${n.dev} lladdr ${n.mac} REACHABLE \n`)
      .join('');
  }

  /** /proc/net/arp as the kernel's arp_seq_show formats it. */
  private procNetArp(): string {
    const rows = this.neighbours().map((n) => `${n.ip.padEnd(16)} 0x1         0x2         ${n.mac}     *        ${n.dev}\n`);
    return `IP address       HW type     Flags       HW address            Mask     Device\n${rows.join('')}`;
  }

  /** QEMU_PROCESS_SCRIPT's output: a libvirt-started QEMU per running domain, plus the hand-started ones. */
  private qemuProcessList(): string {
    const managed = this.running().map(({ d, live }) => libvirtQemuProcess(live, { pid: d.pid!, id: d.id!, ...(d.port !== undefined ? { port: d.port } : {}) }));
    return renderQemuProcessList([...managed, ...this.handStartedQemus]);
  }

  // ---- Domain life cycle ----

  /**
   * What libvirt does when a domain starts: the persistent definition becomes
   * the live one, and it gets an id, a tap device, a pty, a QEMU pid, an
   * autoport; its NIC the address reserved for its MAC, if there is one.
   */
  private markRunning(d: LiveDomain, reason: string, reserved: Set<number> = new Set()): void {
    const live = structuredClone(d.def);
    const pinned = this.networks.find((n) => n.live.name === live.network)?.live.reservations.find((r) => r.mac?.toLowerCase() === live.mac.toLowerCase());
    if (pinned) live.ip = pinned.ip;
    d.live = live;
    d.state = 'running';
    d.reason = reason;
    this.lifecycleEvent(d, 'Started Booted');
    d.id = this.nextId++;
    d.vnet = this.nextVnet++;
    d.pty = this.nextPty++;
    d.pid = this.nextPid;
    this.nextPid += 37;
    d.portId = randomUUID();
    if (live.vnc.kind === 'tcp') {
      const used = new Set([...reserved, ...this.domains.filter((x) => x !== d && x.state === 'running').map((x) => x.port)]);
      let port = live.vnc.port ?? VNC_PORT_MIN;
      if (live.vnc.port === undefined) while (used.has(port)) port++;
      d.port = port;
    }
  }

  private markShutOff(d: LiveDomain, reason: string): void {
    clearTimeout(d.shutdownTimer);
    const screen = d.console;
    d.state = 'shut off';
    d.reason = reason;
    this.lifecycleEvent(d, reason === 'shutdown' ? 'Stopped Shutdown' : reason === 'failed' ? 'Stopped Failed' : 'Stopped Destroyed');
    delete d.live;
    delete d.shutdownTimer;
    delete d.id;
    delete d.port;
    delete d.vnet;
    delete d.pty;
    delete d.pid;
    delete d.portId;
    delete d.console;
    // QEMU exits: its VNC server goes with it (and with it any open viewer).
    screen?.stop?.().catch((err: unknown) => this.opts.log?.(`demo hypervisor: stopping the console of ${d.def.name}: ${(err as Error).message}`));
  }

  /** An ACPI power-button press: the guest powers off after a while, unless it ignores the button. */
  private requestShutdown(d: LiveDomain): void {
    if (d.shutdownTimer || (d.live ?? d.def).ignoresShutdown || this.isStopped) return;
    d.shutdownTimer = setTimeout(() => {
      delete d.shutdownTimer;
      if (d.state !== 'running') return;
      this.markShutOff(d, 'shutdown');
      this.opts.log?.(`demo hypervisor: ${d.def.name} shut down`);
    }, this.opts.shutdownDelayMs ?? DEFAULT_SHUTDOWN_DELAY_MS);
  }

  private async attachConsole(d: LiveDomain): Promise<void> {
    if (this.opts.startConsole) d.console = await this.opts.startConsole(d.live ?? d.def);
  }

  private async start(d: LiveDomain): Promise<CommandResult> {
    const vnc = d.def.vnc;
    if (vnc.kind === 'tcp' && vnc.port !== undefined && this.domains.some((x) => x !== d && x.state === 'running' && x.port === vnc.port)) {
      return fail(`error: Failed to start domain '${d.def.name}'\nerror: internal error: qemu unexpectedly closed the monitor: Failed to start VNC server: Failed to bind socket: Address already in use\n`);
    }
    this.markRunning(d, 'booted');
    try {
      await this.attachConsole(d);
    } catch (err) {
      this.markShutOff(d, 'failed');
      return fail(`error: Failed to start domain '${d.def.name}'\nerror: internal error: demo console did not start: ${(err as Error).message}\n`);
    }
    const live = d.live!.vnc;
    this.opts.log?.(`demo hypervisor: started ${d.def.name} (console ${live.kind === 'tcp' ? `${live.listen}:${d.port}` : live.path})`);
    return ok(`Domain '${d.def.name}' started\n\n`);
  }

  // ---- The inventory script ----

  /**
   * What buildInventoryScript's script prints on a libvirt 9 host, read from
   * the script's own settings (boundary, URI, agent) and never by running
   * it: a blank line, one batch of framed sections (passwords redacted, as
   * its sed does), the batch's own section, the neighbour table and `done`.
   */
  private inventory(script: string): string {
    const setting = (name: string): string | undefined => {
      const line = script.split('\n').find((l) => l.startsWith(`${name}=`));
      const words = line === undefined ? undefined : splitCommandLine(line.slice(name.length + 1));
      return line === undefined ? undefined : (words?.[0]?.[0] ?? '');
    };
    const b = setting('vmd_b');
    const uri = setting('vmd_uri') ?? this.uri;
    if (!b || !/^@@[A-Za-z0-9_-]{16,}$/.test(b)) return '';
    const frame = (kind: string, key: string, r: CommandResult): string =>
      `${b} begin ${kind} ${key}\n${r.stdout}\n${b} end ${r.code}\n${r.stderr ? `${r.stderr.replace(/\n+$/, '')}\n` : ''}`;
    const neigh = frame('neigh', 'ip', ok(this.ipNeigh()));
    const connectError = this.connectError(uri);
    if (connectError) return `\n${frame('list', 'all', fail(connectError))}${neigh}${b} done\n`;

    const queue: [string, string, CommandResult][] = [];
    const add = (kind: string, key: string, r: CommandResult) => queue.push([kind, key, r]);
    add('version', '-', ok(VERSION_TEXT));
    add('list', 'all', ok(this.list(new Set(['all', 'uuid']))));
    for (const s of ['running', 'paused', 'shutoff', 'other']) add('list', s, ok(this.list(new Set(['uuid', `state-${s}`]))));
    add('net-list', 'all', ok(this.netList(new Set(['all', 'uuid']))));
    for (const d of this.listed(() => true)) add('dumpxml', d.def.uuid, ok(domainXml(d, { inactive: false, securityInfo: true })));
    for (const n of this.networks.map((x) => x.live).sort((x, y) => (x.name < y.name ? -1 : 1))) {
      add('net-dumpxml', n.uuid, ok(networkXml(n, this.connections(n.name))));
      add('net-dhcp-leases', n.uuid, ok(this.leases(n, undefined)));
    }
    if (setting('vmd_agent') === '1') {
      for (const d of this.listed((x) => x.state === 'running')) add('domifaddr-agent', d.def.uuid, fail('error: Failed to query for interfaces addresses\nerror: argument unsupported: QEMU guest agent is not configured\n'));
    }
    // virsh goes on after a failed command and exits with the last one's status; failed sections are run again alone.
    const redact = (s: string) => s.replace(/ passwd='[^']*'/g, ` passwd='${REDACTED}'`);
    const passed = queue.filter(([, , r]) => r.code === 0);
    const failed = queue.filter(([, , r]) => r.code !== 0);
    const last = queue[queue.length - 1]![2];
    const batchErr = failed.map(([, , r]) => r.stderr).join('');
    let out = '\n';
    out += redact(passed.map(([k, key, r]) => frame(k, key, r)).join(''));
    out += frame('batch', String(queue.length), { code: last.code, stdout: '', stderr: batchErr });
    out += failed.map(([k, key, r]) => frame(k, key, r)).join('');
    return `${out}${neigh}${b} done\n`;
  }
}
