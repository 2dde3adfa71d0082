/**
 * Parses `ssh -L`-style forward specs into ForwardSpec lists. Pure: no socket
 * is touched, so every mistake is reported before anything connects.
 */
import { isIP } from 'node:net';
import { VmdeskError } from '../errors.js';
import type { ForwardSpec, ForwardTarget } from './types.js';

/**
 * The most ports one range may expand to. 4096 covers every console range seen
 * in practice (a hypervisor's whole 5900..6999 VNC block is 1100) while keeping
 * a typo such as `1-65535` from opening tens of thousands of listeners.
 */
export const MAX_RANGE_PORTS = 4096;

const DEFAULT_BIND_ADDRESS = '127.0.0.1';

/**
 * Remote host of the bare forms (`5900`, `5900-6000`). OpenSSH users write
 * `localhost:5900`, but QEMU's VNC listens on 127.0.0.1 and `localhost` may
 * resolve to ::1 first on DEST, where nothing listens: name the address.
 */
const BARE_FORM_REMOTE_HOST = '127.0.0.1';

const SPEC_FORMS_HINT =
  'accepted forms: PORT, FIRST-LAST, LPORT:RHOST:RPORT, BIND:LPORT:RHOST:RPORT, LPORT:/remote.sock, ' +
  'BIND:LPORT:/remote.sock; put IPv6 addresses in brackets, e.g. [::1]:5900:[fe80::1]:5900';

/** One `:`-separated field; a bracketed field is taken literally (IPv6, or a path with colons). */
interface Field {
  text: string;
  isBracketed: boolean;
  /** A `/` anywhere marks a unix socket path, as in OpenSSH's parse_fwd_field. */
  isPath: boolean;
}

/** Carries a precise problem up to parseOne, which adds the spec text. */
class SpecProblem extends Error {
  constructor(
    readonly problem: string,
    readonly context: Record<string, unknown> = {},
  ) {
    super(problem);
  }
}

/** Parses `-L`-style specs (`5900`, `5900-6000`, `[BIND:]LPORT:RHOST:RPORT`, `[BIND:]LPORT:/path.sock`); throws PORT_SPEC_INVALID. */
export function parseForwardSpecs(specs: string[], opts: { bindAddress?: string } = {}): ForwardSpec[] {
  const defaultBind = parseDefaultBind(opts.bindAddress);
  const parsed = specs.map((spec) => parseOne(spec, defaultBind));
  assertNoOverlap(parsed);
  return parsed.flat();
}

/** `127.0.0.1:5900 -> 127.0.0.1:5900`, for logs and listings. */
export function formatForwardSpec(spec: Pick<ForwardSpec, 'bindAddress' | 'localPort' | 'target'>): string {
  return `${formatHostPort(spec.bindAddress, spec.localPort)} -> ${formatForwardTarget(spec.target)}`;
}

/** `host:port` (IPv6 in brackets) or the socket path. */
export function formatForwardTarget(target: ForwardTarget): string {
  if (target.kind === 'tcp') return formatHostPort(target.host, target.port);
  if (target.kind === 'unix') return target.path;
  return `${target.service} of ${target.vm}`;
}

/** `host:port`, with brackets around an IPv6 address. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function parseDefaultBind(bindAddress: string | undefined): string {
  if (bindAddress === undefined) return DEFAULT_BIND_ADDRESS;
  const text = bindAddress.startsWith('[') && bindAddress.endsWith(']') ? bindAddress.slice(1, -1) : bindAddress;
  if (text === '*' || text === '') return '0.0.0.0';
  if (!isValidHost(text)) {
    throw new VmdeskError('PORT_SPEC_INVALID', `invalid bind address "${bindAddress}": not an IP address or host name`, {
      context: { bindAddress },
    });
  }
  return text;
}

function parseOne(rawSpec: string, defaultBind: string): ForwardSpec[] {
  const source = rawSpec.trim();
  try {
    return interpretFields(splitFields(source), source, defaultBind);
  } catch (err) {
    if (!(err instanceof SpecProblem)) throw err;
    throw new VmdeskError('PORT_SPEC_INVALID', `invalid forward "${rawSpec}": ${err.problem}`, {
      context: { spec: rawSpec, ...err.context },
      hint: SPEC_FORMS_HINT,
    });
  }
}

function splitFields(spec: string): Field[] {
  if (spec === '') throw new SpecProblem('the spec is empty');
  const fields: Field[] = [];
  let i = 0;
  for (;;) {
    if (spec[i] === '[') {
      const close = spec.indexOf(']', i + 1);
      if (close < 0) throw new SpecProblem(`"[" at offset ${i} has no matching "]"`);
      const after = spec[close + 1];
      if (after !== undefined && after !== ':') {
        throw new SpecProblem(`"]" at offset ${close} must end the field (be followed by ":" or the end)`);
      }
      const text = spec.slice(i + 1, close);
      fields.push({ text, isBracketed: true, isPath: text.includes('/') });
      if (after === undefined) return fields;
      i = close + 2;
      if (i === spec.length) {
        fields.push({ text: '', isBracketed: false, isPath: false });
        return fields;
      }
      continue;
    }
    const colon = spec.indexOf(':', i);
    const end = colon < 0 ? spec.length : colon;
    const text = spec.slice(i, end);
    if (/[[\]]/.test(text)) throw new SpecProblem(`field "${text}" has a bracket inside it; brackets must enclose a whole field`);
    fields.push({ text, isBracketed: false, isPath: text.includes('/') });
    if (colon < 0) return fields;
    i = colon + 1;
  }
}

function interpretFields(fields: Field[], source: string, defaultBind: string): ForwardSpec[] {
  const [a, b, c, d] = fields;
  switch (fields.length) {
    case 1:
      return parseBareForm(field(a), source, defaultBind);
    case 2:
      if (!field(b).isPath) {
        throw new SpecProblem(
          /^\d+$/.test(field(b).text)
            ? 'a bind address and a port but no target; write BIND:LPORT:RHOST:RPORT'
            : 'a local port and a host but no remote port; write LPORT:RHOST:RPORT or LPORT:/abs/path.sock',
        );
      }
      return [make(defaultBind, parseLocalPort(field(a)), unixTarget(field(b)), source)];
    case 3:
      if (field(c).isPath) return [make(parseBind(field(a)), parseLocalPort(field(b)), unixTarget(field(c)), source)];
      return [make(defaultBind, parseLocalPort(field(a)), tcpTarget(field(b), field(c)), source)];
    case 4:
      if (field(d).isPath) throw new SpecProblem('a unix socket target takes at most BIND:LPORT:/path.sock (3 fields), got 4');
      return [make(parseBind(field(a)), parseLocalPort(field(b)), tcpTarget(field(c), field(d)), source)];
    default:
      throw new SpecProblem(
        `${fields.length} ":"-separated fields, at most 4 allowed (BIND:LPORT:RHOST:RPORT)` +
          (/::|[a-f]/i.test(source) ? '; IPv6 addresses must be in brackets' : ''),
        { fields: fields.length },
      );
  }
}

/** Narrows an index the caller knows to exist (fields.length was checked). */
function field(f: Field | undefined): Field {
  if (f === undefined) throw new SpecProblem('missing field');
  return f;
}

function make(bindAddress: string, localPort: number, target: ForwardTarget, source: string): ForwardSpec {
  return { bindAddress, localPort, target, source };
}

function parseBareForm(f: Field, source: string, defaultBind: string): ForwardSpec[] {
  if (f.isPath) throw new SpecProblem(`"${f.text}" looks like a socket path; a unix socket target needs a local port: LPORT:${f.text}`);
  if (f.isBracketed) throw new SpecProblem(`"[${f.text}]" alone is not a port; brackets are for addresses and paths`);
  const range = /^(\d+)-(\d+)$/.exec(f.text);
  if (range === null && f.text.includes('-') && f.text !== '') {
    throw new SpecProblem(`"${f.text}" is neither a port number nor a FIRST-LAST range`);
  }
  if (range === null) {
    const port = parsePort(f.text, 'port');
    return [make(defaultBind, port, { kind: 'tcp', host: BARE_FORM_REMOTE_HOST, port }, source)];
  }
  const first = parsePort(range[1] ?? '', 'first port of the range');
  const last = parsePort(range[2] ?? '', 'last port of the range');
  if (last < first) throw new SpecProblem(`range ${first}-${last} is reversed; write ${last}-${first}`, { first, last });
  const count = last - first + 1;
  if (count > MAX_RANGE_PORTS) {
    throw new SpecProblem(`range ${first}-${last} has ${count} ports, more than the limit of ${MAX_RANGE_PORTS}`, { first, last });
  }
  const out: ForwardSpec[] = [];
  for (let port = first; port <= last; port++) {
    out.push(make(defaultBind, port, { kind: 'tcp', host: BARE_FORM_REMOTE_HOST, port }, source));
  }
  return out;
}

function parseLocalPort(f: Field): number {
  if (f.isPath) throw new SpecProblem(`local "${f.text}" looks like a path; listening on a local unix socket is not supported`);
  if (f.isBracketed) throw new SpecProblem(`local port "[${f.text}]" must not be in brackets`);
  if (/^\d+-\d+$/.test(f.text)) {
    throw new SpecProblem(`port range "${f.text}" is only accepted alone (e.g. 5900-6000), not with a remote host or socket`);
  }
  return parsePort(f.text, 'local port');
}

function parsePort(text: string, what: string): number {
  if (text === '') throw new SpecProblem(`${what} is empty`);
  if (!/^\d+$/.test(text)) throw new SpecProblem(`${what} "${text}" is not a number`);
  const port = Number(text);
  if (port === 0) throw new SpecProblem(`${what} 0 is not allowed; ports are 1..65535`, { port });
  if (port > 65535) throw new SpecProblem(`${what} ${text} is out of range; ports are 1..65535`, { port });
  return port;
}

function parseBind(f: Field): string {
  // An empty bind address or `*` means every interface, as ssh(1) documents for -L.
  if (!f.isBracketed && (f.text === '' || f.text === '*')) return '0.0.0.0';
  if (f.isPath) throw new SpecProblem(`bind address "${f.text}" looks like a path; listening on a local unix socket is not supported`);
  if (!isValidHost(f.text)) throw new SpecProblem(`bind address "${f.text}" is not an IP address or host name`);
  return f.text;
}

function tcpTarget(hostField: Field, portField: Field): ForwardTarget {
  if (hostField.text === '') throw new SpecProblem('remote host is empty');
  if (hostField.isPath) throw new SpecProblem(`remote host "${hostField.text}" looks like a path; a unix socket target is LPORT:/path.sock`);
  if (!isValidHost(hostField.text)) throw new SpecProblem(`remote host "${hostField.text}" is not an IP address or host name`);
  if (portField.isBracketed) throw new SpecProblem(`remote port "[${portField.text}]" must not be in brackets`);
  if (/^\d+-\d+$/.test(portField.text)) {
    throw new SpecProblem(`port range "${portField.text}" is only accepted alone (e.g. 5900-6000), not with a remote host`);
  }
  return { kind: 'tcp', host: hostField.text, port: parsePort(portField.text, 'remote port') };
}

function unixTarget(f: Field): ForwardTarget {
  // A relative path would be resolved against sshd's working directory on DEST, which nobody means.
  if (!f.text.startsWith('/')) throw new SpecProblem(`unix socket path "${f.text}" is relative; give an absolute path on the destination`);
  if (f.text.includes('\0')) throw new SpecProblem('unix socket path contains a NUL byte');
  return { kind: 'unix', path: f.text };
}

function isValidHost(text: string): boolean {
  if (isIP(text) !== 0) return true;
  // Host names as ssh_config accepts them (underscores included); no leading `-` so nothing reads as an option.
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(text) && text.length <= 253;
}

/** The key two binds are compared by: IPv6 in canonical form, names lower-cased. */
function canonicalBind(host: string): string {
  if (isIP(host) === 6 && !host.includes('%')) {
    try {
      return new URL(`http://[${host}]/`).hostname.slice(1, -1);
    } catch {
      return host.toLowerCase();
    }
  }
  return host.toLowerCase();
}

function isWildcardBind(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

function isLoopbackBind(host: string): boolean {
  return host === 'localhost' || host === '127.0.0.1' || host === '::1';
}

/**
 * Two binds of one port collide when they are the same address, when either
 * is a wildcard (the kernel refuses a specific bind under a wildcard one, and
 * the reverse), or when `localhost` meets the loopback address it resolves to.
 */
function bindsOverlap(a: string, b: string): boolean {
  if (a === b || isWildcardBind(a) || isWildcardBind(b)) return true;
  return (a === 'localhost' && isLoopbackBind(b)) || (b === 'localhost' && isLoopbackBind(a));
}

function assertNoOverlap(parsed: ForwardSpec[][]): void {
  const byPort = new Map<number, { bind: string; specIndex: number; spec: ForwardSpec }[]>();
  parsed.forEach((group, specIndex) => {
    for (const spec of group) {
      const bind = canonicalBind(spec.bindAddress);
      const seen = byPort.get(spec.localPort);
      const clash = seen?.find((other) => other.specIndex !== specIndex && bindsOverlap(other.bind, bind));
      if (clash !== undefined) {
        const where = formatHostPort(spec.bindAddress, spec.localPort);
        throw new VmdeskError(
          'PORT_SPEC_INVALID',
          `invalid forward "${spec.source}": local ${where} is already taken by forward "${clash.spec.source}" ` +
            `(${formatHostPort(clash.spec.bindAddress, clash.spec.localPort)})`,
          {
            context: { spec: spec.source, other: clash.spec.source, host: spec.bindAddress, port: spec.localPort },
            hint: 'give each forward its own local port, or drop the duplicate',
          },
        );
      }
      if (seen === undefined) byPort.set(spec.localPort, [{ bind, specIndex, spec }]);
      else seen.push({ bind, specIndex, spec });
    }
  });
}
