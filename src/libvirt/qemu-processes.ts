/**
 * The QEMU processes of a hypervisor and their consoles, read from the
 * process list: libvirt's own and the ones started by hand (`qemu-system-x86_64
 * -vnc 0.0.0.0:7 ...`), which no `virsh` command shows. The shell side is one
 * POSIX sh script; the parsing of QEMU's option syntax (QemuOpts: `key=value`
 * pairs split on `,`, a literal comma written `,,`, an implied first key) is pure.
 */

/** A QEMU VNC server as its command line sets it up. */
export interface QemuVnc {
  /** The host part: `0.0.0.0`, `::`, `127.0.0.1`, a host name, or `unix:/path`. An empty host (`-vnc :1`) is every address, given as `0.0.0.0`. */
  listen: string;
  /** 5900 + display; undefined for a unix socket. */
  port?: number;
  /** `password=on`, `password-secret=` or the legacy `,password` flag: a client needs a password (set later through the monitor). */
  hasPassword: boolean;
  /** `tls-creds=` or the legacy `tls`/`x509` flags. */
  hasTls: boolean;
  /** `sasl=on`: SASL authentication (with its own optional encryption). */
  hasSasl: boolean;
  /** `reverse=on`: QEMU connects out to a listening viewer and listens on nothing. */
  isReverse: boolean;
  /** The additional WebSocket listener (`websocket=on|PORT|HOST:PORT`), 5700 + display by default. */
  websocket?: { listen: string; port?: number };
}

/** A QEMU SPICE server as its command line sets it up. */
export interface QemuSpice {
  /** `addr=`, `unix:/path` with `unix=on`, or `0.0.0.0` when a port is set without `addr` (every address); undefined when nothing listens. */
  listen?: string;
  port?: number;
  tlsPort?: number;
  /** `password-secret=` or `password=`; false with `disable-ticketing=on`. */
  hasPassword: boolean;
}

/** One QEMU process of the hypervisor and what its command line says. */
export interface QemuProcess {
  pid: number;
  /** The real user: its name where the host could resolve it, else the numeric uid. */
  user: string;
  argv: string[];
  /** `-uuid`, lower case: how a libvirt-started QEMU is matched to its domain. */
  uuid?: string;
  /** `-name guest=NAME` or `-name NAME`. */
  name?: string;
  vnc?: QemuVnc;
  spice?: QemuSpice;
}

// Prints `P PID UID USER` and then /proc/PID/cmdline in `od` hex for every process named qemu-system*,
// qemu-kvm or qemu:* (libvirt's set_process_name). Hex lines hold only hex digits and spaces, so no
// argument can forge a record; a process that exits meanwhile yields an empty or missing record. Only
// built-ins run per process (`id` and `od` for matches), in dash, bash and busybox ash; `E` marks the end.
/** The POSIX sh script that lists QEMU processes with their user and exact argv (see parseQemuProcesses). */
export const QEMU_PROCESS_SCRIPT = [
  'for d in /proc/[0-9]*; do',
  '  { read -r c < "$d/comm"; } 2>/dev/null || continue',
  '  case $c in qemu-system*|qemu-kvm|qemu:*) ;; *) continue ;; esac',
  '  uid=',
  '  { while read -r k v _; do if [ "$k" = Uid: ]; then uid=$v; break; fi; done < "$d/status"; } 2>/dev/null',
  '  [ -n "$uid" ] || continue',
  // /proc/PID's owner is root for a non-dumpable process (QEMU's -runas), so the name comes from the real uid.
  '  u=$(id -nu "$uid" 2>/dev/null) || u=',
  '  if [ -z "$u" ]; then',
  '    { while IFS=: read -r n _ i _; do if [ "$i" = "$uid" ]; then u=$n; break; fi; done < /etc/passwd; } 2>/dev/null',
  '  fi',
  `  printf 'P %s %s %s\\n' "\${d#/proc/}" "$uid" "\${u:-$uid}"`,
  '  od -An -v -tx1 "$d/cmdline" 2>/dev/null',
  'done',
  'echo E',
].join('\n');

/** True for the argv[0] of a QEMU system emulator. */
export function isQemuArgv0(argv0: string): boolean {
  const base = argv0.slice(argv0.lastIndexOf('/') + 1);
  return base.startsWith('qemu-system') || base === 'qemu-kvm';
}

/** Parses QEMU_PROCESS_SCRIPT's output; processes that vanished mid-read or are not QEMU are dropped. */
export function parseQemuProcesses(output: string): QemuProcess[] {
  const out: QemuProcess[] = [];
  let current: { pid: number; user: string; hex: string[] } | undefined;
  const flush = (): void => {
    if (!current) return;
    const { pid, user, hex } = current;
    current = undefined;
    const argv = Buffer.from(hex.join(''), 'hex').toString('utf8').split('\0');
    // cmdline ends with a NUL; a process that rewrote its title may not.
    if (argv.at(-1) === '') argv.pop();
    if (argv.length === 0 || !isQemuArgv0(argv[0]!)) return;
    out.push({ pid, user, ...parseQemuArgv(argv) });
  };
  for (const line of output.split('\n')) {
    const head = /^P (\d+) (\d+) (.*)$/.exec(line);
    if (head) {
      flush();
      current = { pid: Number(head[1]), user: head[3] || head[2]!, hex: [] };
    } else if (current && /^[0-9a-f ]+$/i.test(line)) {
      current.hex.push(line.replace(/ /g, ''));
    } else if (line === 'E') {
      flush();
    }
  }
  flush();
  return out;
}

/** Splits a QemuOpts string on `,` where `,,` is a literal comma; the first bare element is the implied key. */
export function splitQemuOpts(value: string, impliedKey?: string): [string, string][] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === ',' && value[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (ch === ',') {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((part, i): [string, string] => {
    const eq = part.indexOf('=');
    if (eq >= 0) return [part.slice(0, eq), part.slice(eq + 1)];
    if (i === 0 && impliedKey !== undefined) return [impliedKey, part];
    // QemuOpts' bare flag: `password` is password=on, `nopassword` (long deprecated) is off.
    return part.startsWith('no') && part.length > 2 ? [part.slice(2), 'off'] : [part, 'on'];
  });
}

function isOn(v: string | undefined): boolean {
  return v !== undefined && ['on', 'yes', 'true', 'y'].includes(v.toLowerCase());
}

/** The host and port of `HOST:PORT`, `[V6]:PORT` or `:PORT`; an empty host means every address. */
function splitHostPort(s: string): { host: string; port: string } | undefined {
  const colon = s.lastIndexOf(':');
  if (colon < 0) return undefined;
  let host = s.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host: host === '' ? '0.0.0.0' : host, port: s.slice(colon + 1) };
}

function toPort(s: string | undefined, base = 0): number | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  const n = base + Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** Parses a `-vnc` value (QEMU's docs: system/invocation, "-vnc display[,option[,option[,...]]]"); undefined for `none`. */
export function parseVncOption(value: string): QemuVnc | undefined {
  const opts = new Map<string, string>();
  for (const [k, v] of splitQemuOpts(value, 'vnc')) if (!opts.has(k)) opts.set(k, v);
  const display = opts.get('vnc');
  if (display === undefined || display === 'none' || display === '') return undefined;
  const vnc: QemuVnc = {
    listen: display,
    hasPassword: isOn(opts.get('password')) || opts.has('password-secret'),
    hasTls: opts.has('tls-creds') || isOn(opts.get('tls')) || opts.has('x509') || opts.has('x509verify'),
    hasSasl: isOn(opts.get('sasl')),
    isReverse: isOn(opts.get('reverse')),
  };
  let displayNumber: string | undefined;
  if (display.startsWith('unix:')) {
    vnc.listen = display;
  } else {
    const hp = splitHostPort(display);
    if (hp === undefined) return vnc;
    vnc.listen = hp.host;
    displayNumber = hp.port;
    // In reverse mode the number is the viewer's port, not a display.
    const port = toPort(hp.port, vnc.isReverse ? 0 : 5900);
    if (port !== undefined) vnc.port = port;
  }
  const ws = opts.get('websocket');
  if (ws !== undefined && ws !== 'off' && !vnc.isReverse) {
    // A bare port (or `on`: 5700 + display) listens on the VNC host; HOST:PORT sets its own.
    const hp = ws.includes(':') ? splitHostPort(ws) : undefined;
    const wsPort = hp ? toPort(hp.port) : isOn(ws) ? toPort(displayNumber, 5700) : toPort(ws);
    const wsHost = hp ? hp.host : vnc.listen.startsWith('unix:') ? '0.0.0.0' : vnc.listen;
    vnc.websocket = { listen: wsHost, ...(wsPort !== undefined ? { port: wsPort } : {}) };
  }
  return vnc;
}

/** Parses a `-spice` value (QEMU's docs: system/invocation, "-spice option[,option[,...]]"). */
export function parseSpiceOption(value: string): QemuSpice {
  const opts = new Map<string, string>();
  for (const [k, v] of splitQemuOpts(value)) if (!opts.has(k)) opts.set(k, v);
  const spice: QemuSpice = { hasPassword: !isOn(opts.get('disable-ticketing')) && (opts.has('password') || opts.has('password-secret')) };
  const port = toPort(opts.get('port'));
  const tlsPort = toPort(opts.get('tls-port'));
  if (port !== undefined) spice.port = port;
  if (tlsPort !== undefined) spice.tlsPort = tlsPort;
  const addr = opts.get('addr');
  if (isOn(opts.get('unix')) && addr !== undefined) spice.listen = `unix:${addr}`;
  else if (port !== undefined || tlsPort !== undefined) spice.listen = addr === undefined || addr === '' ? '0.0.0.0' : addr.replace(/^\[(.*)\]$/, '$1');
  return spice;
}

/** What a QEMU command line says about identity and consoles; the first `-vnc` and `-spice` count. */
export function parseQemuArgv(argv: string[]): { argv: string[]; uuid?: string; name?: string; vnc?: QemuVnc; spice?: QemuSpice } {
  const r: { argv: string[]; uuid?: string; name?: string; vnc?: QemuVnc; spice?: QemuSpice } = { argv };
  for (let i = 1; i < argv.length - 1; i++) {
    // QEMU accepts --option as well as -option.
    const opt = argv[i]!.replace(/^--/, '-');
    const value = argv[i + 1]!;
    if (opt === '-uuid' && r.uuid === undefined) r.uuid = value.toLowerCase();
    else if (opt === '-name' && r.name === undefined) {
      const guest = splitQemuOpts(value, 'guest').find(([k]) => k === 'guest');
      if (guest) r.name = guest[1];
    } else if (opt === '-vnc' && r.vnc === undefined) {
      const vnc = parseVncOption(value);
      if (vnc) r.vnc = vnc;
    } else if (opt === '-display' && value.startsWith('vnc=') && r.vnc === undefined) {
      const vnc = parseVncOption(value.slice(4));
      if (vnc) r.vnc = vnc;
    } else if (opt === '-spice' && r.spice === undefined) r.spice = parseSpiceOption(value);
    else continue;
    i++;
  }
  return r;
}
