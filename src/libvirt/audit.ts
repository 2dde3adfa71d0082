/**
 * `vmdesk audit`: every console of a hypervisor (each libvirt `<graphics>`,
 * running or not, plus the VNC/SPICE servers of QEMU processes libvirt does not
 * manage), whether it is reachable from the network, and for each exposed one a
 * severity and the exact command that fixes it. Pure: the inventory, the process
 * list and qemu.conf are read elsewhere.
 */
import type { DomainUuid } from './domain-list.js';
import { isLoopback, type GraphicsInfo } from './domain-xml.js';
import type { Inventory, InventoryDomain, InventoryState } from './inventory.js';
import type { QemuConf } from './qemu-conf.js';
import type { QemuProcess } from './qemu-processes.js';
import { shellWord } from './shell-quote.js';

/** high: exposed without (or with an unknown) password; medium: password, no TLS; low: password and TLS. */
export type AuditSeverity = 'high' | 'medium' | 'low';

/** One console of the hypervisor, exposed or not. */
export interface AuditConsole {
  /** The libvirt domain (libvirt's consoles only: `vmdesk vnc-listen` can fix it). */
  vm?: string;
  /** That domain's UUID, which `audit --fix` acts on. */
  uuid?: DomainUuid;
  /** A QEMU process not managed by libvirt. */
  pid?: number;
  /** That process's `-name`, printable. */
  processName?: string;
  kind: 'vnc' | 'spice';
  /** The TCP addresses it listens on (`network:NAME` for a network listen not yet resolved); empty for a socket or when unknown (see `note`). */
  listen: string[];
  port?: number;
  /** SPICE's TLS port. */
  tlsPort?: number;
  socket?: string;
  /** Null when it cannot be known (read-only libvirt access hides `passwd`). */
  hasPassword: boolean | null;
  /** Null when qemu.conf could not be read. */
  hasTls: boolean | null;
  isExposed: boolean;
  isManaged: boolean;
  /** A VNC WebSocket listener (QEMU's `websocket=`), next to the plain VNC port. */
  isWebsocket?: boolean;
  /** The libvirt domain's state; a shut-off VM listens there once started. */
  state?: InventoryState;
  /** Why `listen` is incomplete, e.g. qemu.conf decides it and could not be read. */
  note?: string;
}

/** One exposed console, with what to do about it. */
export interface AuditFinding {
  severity: AuditSeverity;
  host: string;
  /** Set for libvirt domains only; a hand-started QEMU has `pid` (its `-name` is in the message). */
  vm?: string;
  uuid?: DomainUuid;
  pid?: number;
  kind: 'vnc' | 'spice';
  /** The exposed address(es) with the port, e.g. `0.0.0.0:5901`. */
  listen: string;
  message: string;
  /** The command (or, for a hand-started QEMU, the instruction) that makes it listen on loopback only. */
  fix: string;
}

/** The audit of one hypervisor. */
export interface AuditReport {
  host: string;
  consoles: AuditConsole[];
  /** Exposed consoles only, high severity first. */
  findings: AuditFinding[];
}

const SEVERITY_RANK: Record<AuditSeverity, number> = { high: 0, medium: 1, low: 2 };

/** Process arguments are anyone's text: no control characters reach the terminal. */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function hostPort(addr: string, port: number | undefined): string {
  const a = addr.includes(':') && !addr.startsWith('network:') ? `[${addr}]` : addr;
  return port === undefined ? a : `${a}:${port}`;
}

function isExposedAddress(a: string): boolean {
  return a.startsWith('network:') || !isLoopback(a);
}

/** One libvirt `<graphics>` as the audit sees it, qemu.conf's defaults applied. */
function libvirtConsole(d: InventoryDomain, g: GraphicsInfo, kind: 'vnc' | 'spice', conf: QemuConf | undefined): AuditConsole {
  const c: AuditConsole = { vm: d.name ?? d.uuid, uuid: d.uuid, kind, listen: [], hasPassword: null, hasTls: null, isExposed: false, isManaged: true, state: d.state };
  if (g.port !== undefined) c.port = g.port;
  if (g.tlsPort !== undefined) c.tlsPort = g.tlsPort;
  const socket = g.socket ?? g.listens.find((l) => l.type === 'socket')?.socket;
  let usesDefault = g.listens.length === 0 && socket === undefined;
  for (const l of g.listens) {
    if (l.type === 'address' && l.address !== undefined) c.listen.push(l.address);
    else if (l.type === 'address') usesDefault = true;
    else if (l.type === 'network') c.listen.push(l.address ?? `network:${l.network ?? '?'}`);
  }
  if (socket !== undefined) c.socket = socket;
  else if (g.listens.some((l) => l.type === 'socket')) c.note = 'a unix socket chosen by libvirt';
  else if (g.listens.length > 0 && g.listens.every((l) => l.type === 'none')) c.note = 'no listener (listen type none)';
  if (usesDefault) {
    // An address-less listen takes qemu.conf's vnc_listen/spice_listen (127.0.0.1 unset), or a socket with *_auto_unix_socket.
    const autoSocket = kind === 'vnc' ? conf?.vncAutoUnixSocket : conf?.spiceAutoUnixSocket;
    const confListen = kind === 'vnc' ? conf?.vncListen : conf?.spiceListen;
    if (conf === undefined) c.note = `listens on qemu.conf's ${kind}_listen, which could not be read (libvirt's default is 127.0.0.1)`;
    else if (autoSocket) c.note = `a unix socket chosen by libvirt (${kind}_auto_unix_socket = 1)`;
    else c.listen.push(confListen ?? '127.0.0.1');
  }
  c.isExposed = c.listen.some(isExposedAddress);
  const confPassword = kind === 'vnc' ? conf?.vncPasswordSet : conf?.spicePasswordSet;
  // qemu.conf's vnc_password/spice_password applies to every console without its own passwd.
  c.hasPassword = (d.arePasswordsKnown && g.hasPassword) || confPassword === true ? true : d.arePasswordsKnown ? false : null;
  if (conf !== undefined) {
    // SPICE offers TLS on its tlsPort, which libvirt allocates with autoport or takes from tlsPort=.
    c.hasTls = kind === 'vnc' ? conf.vncTls === true : conf.spiceTls === true && (g.tlsPort !== undefined || g.autoport);
  }
  return c;
}

/** The consoles of a QEMU process libvirt does not manage. */
function processConsoles(p: QemuProcess): AuditConsole[] {
  const out: AuditConsole[] = [];
  const base = { pid: p.pid, ...(p.name !== undefined ? { processName: printable(p.name) } : {}), isManaged: false };
  const place = (listen: string | undefined): { listen: string[]; socket?: string } =>
    listen === undefined ? { listen: [] } : listen.startsWith('unix:') ? { listen: [], socket: listen.slice(5) } : { listen: [listen] };
  if (p.vnc && !p.vnc.isReverse) {
    const v = p.vnc;
    const auth = { hasPassword: v.hasPassword || v.hasSasl, hasTls: v.hasTls };
    const main = place(v.listen);
    out.push({ ...base, kind: 'vnc', ...main, ...(v.port !== undefined ? { port: v.port } : {}), ...auth, isExposed: main.listen.some(isExposedAddress) });
    if (v.websocket) {
      const ws = place(v.websocket.listen);
      out.push({ ...base, kind: 'vnc', ...ws, ...(v.websocket.port !== undefined ? { port: v.websocket.port } : {}), ...auth, isExposed: ws.listen.some(isExposedAddress), isWebsocket: true });
    }
  }
  if (p.spice && p.spice.listen !== undefined) {
    const s = p.spice;
    const where = place(s.listen);
    out.push({
      ...base,
      kind: 'spice',
      ...where,
      ...(s.port !== undefined ? { port: s.port } : {}),
      ...(s.tlsPort !== undefined ? { tlsPort: s.tlsPort } : {}),
      hasPassword: s.hasPassword,
      hasTls: s.tlsPort !== undefined,
      isExposed: where.listen.some(isExposedAddress),
    });
  }
  return out;
}

function severityOf(c: AuditConsole): AuditSeverity {
  if (c.hasPassword !== true) return 'high';
  return c.hasTls === true ? 'low' : 'medium';
}

function findingFor(host: string, c: AuditConsole, p: QemuProcess | undefined): AuditFinding {
  const severity = severityOf(c);
  const listen = c.listen
    .filter(isExposedAddress)
    .map((a) => hostPort(a, c.port ?? c.tlsPort))
    .join(', ');
  const kindName = c.isWebsocket ? 'VNC WebSocket' : c.kind.toUpperCase();
  const auth =
    c.hasPassword === null
      ? 'and its password could not be checked (read-only libvirt access)'
      : !c.hasPassword
        ? 'without a password'
        : c.hasTls !== true
          ? `with a password but ${c.hasTls === null ? 'TLS unknown (qemu.conf unreadable)' : 'without TLS'}: ${c.kind === 'vnc' ? 'VNC passwords are at most 8 characters (DES challenge) and the session is unencrypted' : 'the session is unencrypted'}`
          : 'with a password and TLS';
  if (p === undefined) {
    const vm = c.vm!;
    const isShutOff = c.state === 'shut off';
    const isRunning = c.state === 'running' || c.state === 'paused';
    const when = isShutOff ? `is shut off and will listen on ${listen} when started` : `listens on ${listen}`;
    return {
      severity,
      host,
      vm,
      ...(c.uuid !== undefined ? { uuid: c.uuid } : {}),
      kind: c.kind,
      listen,
      message: `${vm} on ${host}: ${kindName} console ${when}, ${auth}`,
      fix: `vmdesk vnc-listen ${shellWord(`${host}/${vm}`)} 127.0.0.1${isRunning ? ' --restart' : ''}`,
    };
  }
  const argv0 = printable(p.argv[0] ?? 'qemu');
  const who = `QEMU process ${p.pid} (${argv0}${p.name !== undefined ? `, -name ${printable(p.name)}` : ''}, not managed by libvirt)`;
  let restartWith: string;
  if (c.kind === 'spice') restartWith = `-spice port=${c.port ?? c.tlsPort ?? 5930},addr=127.0.0.1`;
  else {
    const vncPort = p.vnc?.port;
    const display = vncPort !== undefined ? vncPort - 5900 : 0;
    restartWith = `-vnc 127.0.0.1:${display}${c.isWebsocket ? `,websocket=127.0.0.1:${c.port ?? 5700 + display}` : ''}`;
  }
  return {
    severity,
    host,
    pid: p.pid,
    kind: c.kind,
    listen,
    message: `${who} on ${host}: ${kindName} console listens on ${listen}, ${auth}`,
    fix: `stop PID ${p.pid} (${argv0}) and start it again with ${restartWith}`,
  };
}

/** Audits one hypervisor's consoles: libvirt's (from `inv`) and hand-started QEMUs' (from `processes`). */
export function auditHost(host: string, inv: Inventory, processes: QemuProcess[], conf: QemuConf | undefined): AuditReport {
  const consoles: AuditConsole[] = [];
  const findings: AuditFinding[] = [];
  for (const d of inv.domains) {
    for (const g of d.graphics) {
      if (g.type !== 'vnc' && g.type !== 'spice') continue;
      const c = libvirtConsole(d, g, g.type, conf);
      consoles.push(c);
      if (c.isExposed) findings.push(findingFor(host, c, undefined));
    }
  }
  const managed = new Set(inv.domains.map((d) => d.uuid.toLowerCase()));
  for (const p of processes) {
    // libvirt always passes -uuid; a QEMU without one, or with a UUID no domain has, was started some other way.
    if (p.uuid !== undefined && managed.has(p.uuid)) continue;
    for (const c of processConsoles(p)) {
      consoles.push(c);
      if (c.isExposed) findings.push(findingFor(host, c, p));
    }
  }
  findings.sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity]);
  return { host, consoles, findings };
}
