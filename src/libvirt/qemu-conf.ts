/**
 * The console settings of libvirt's /etc/libvirt/qemu.conf, read the way
 * libvirt's own virconf parser (src/util/virconf.c) reads it: `name = value`
 * statements separated by newlines or `;`, `#` comments, values that are
 * integers, '...' / "..." / """...""" strings (no escapes) or [ lists ] over
 * several lines; the first statement of a name wins; booleans are 0 or 1. Pure.
 */

/** The console settings of qemu.conf; undefined fields are unset (libvirt's defaults apply). */
export interface QemuConf {
  vncListen?: string;
  vncTls?: boolean;
  /** `vnc_password` is set (even empty): every VNC console without its own passwd gets it. */
  vncPasswordSet?: boolean;
  /** Address-less VNC listens become a unix socket (takes precedence over vnc_listen). */
  vncAutoUnixSocket?: boolean;
  vncSasl?: boolean;
  spiceListen?: string;
  spiceTls?: boolean;
  spicePasswordSet?: boolean;
  spiceAutoUnixSocket?: boolean;
  /** Where parsing stopped on a syntax error (libvirtd would refuse the file); what was read before it is kept. */
  syntaxError?: string;
}

type ConfValue = { type: 'int'; value: number } | { type: 'string'; value: string } | { type: 'list'; value: ConfValue[] };

class ConfSyntaxError extends Error {}

/** Every `name = value` statement of a virconf text, first occurrence per name. */
function parseStatements(text: string): { values: Map<string, ConfValue>; error?: string } {
  const values = new Map<string, ConfValue>();
  let i = 0;
  let line = 1;
  const fail = (what: string): never => {
    throw new ConfSyntaxError(`line ${line}: ${what}`);
  };
  const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t';
  const isEol = (c: string | undefined): boolean => c === '\n' || c === '\r';
  const skipBlanks = (): void => {
    while (isBlank(text[i])) i++;
  };
  const skipBlanksAndEol = (): void => {
    while (isBlank(text[i]) || isEol(text[i])) {
      if (text[i] === '\n') line++;
      i++;
    }
  };
  const skipComment = (): void => {
    while (i < text.length && !isEol(text[i])) i++;
  };

  const parseString = (): string => {
    if (text.startsWith('"""', i)) {
      const end = text.indexOf('"""', i + 3);
      if (end < 0) fail('unterminated string');
      const s = text.slice(i + 3, end);
      line += s.split('\n').length - 1;
      i = end + 3;
      return s;
    }
    const q = text[i]!;
    let j = i + 1;
    while (j < text.length && text[j] !== q && !isEol(text[j])) j++;
    if (text[j] !== q) fail('unterminated string');
    const s = text.slice(i + 1, j);
    i = j + 1;
    return s;
  };

  const parseValue = (): ConfValue => {
    skipBlanks();
    const c = text[i];
    if (c === '"' || c === "'") return { type: 'string', value: parseString() };
    if (c === '[') {
      i++;
      const list: ConfValue[] = [];
      // virconf allows newlines inside a list; comment lines there are tolerated here too.
      const skipFiller = (): void => {
        for (skipBlanksAndEol(); text[i] === '#'; skipBlanksAndEol()) skipComment();
      };
      for (;;) {
        skipFiller();
        if (i >= text.length) fail('list is not closed with ]');
        if (text[i] === ']') {
          i++;
          return { type: 'list', value: list };
        }
        if (list.length > 0) {
          if (text[i] !== ',') fail('expecting a separator in list');
          i++;
          skipFiller();
          if (text[i] === ']') continue;
        }
        list.push(parseValue());
      }
    }
    const m = /^[-+]?\d+/.exec(text.slice(i, i + 32));
    if (m) {
      i += m[0].length;
      return { type: 'int', value: Number(m[0]) };
    }
    return fail('expecting a value');
  };

  try {
    while (i < text.length) {
      skipBlanksAndEol();
      if (i >= text.length) break;
      if (text[i] === '#') {
        skipComment();
        continue;
      }
      const name = /^[A-Za-z][A-Za-z0-9_]*/.exec(text.slice(i, i + 256))?.[0];
      if (name === undefined) fail('expecting a name');
      i += name!.length;
      skipBlanks();
      if (text[i] !== '=') fail('expecting an assignment');
      i++;
      const value = parseValue();
      skipBlanks();
      if (text[i] === '#') skipComment();
      if (!values.has(name!)) values.set(name!, value);
      skipBlanks();
      if (i < text.length) {
        if (text[i] === ';') i++;
        else if (!isEol(text[i])) fail('expecting a separator');
      }
    }
  } catch (e) {
    if (e instanceof ConfSyntaxError) return { values, error: e.message };
    throw e;
  }
  return { values };
}

/** Reads the VNC/SPICE settings of a qemu.conf text; a setting absent (or of the wrong type) is undefined: libvirt's default. */
export function parseQemuConf(text: string): QemuConf {
  const { values, error } = parseStatements(text);
  const str = (k: string): string | undefined => {
    const v = values.get(k);
    return v?.type === 'string' ? v.value : undefined;
  };
  // virConfGetValueBool: an integer 0 or 1, nothing else.
  const bool = (k: string): boolean | undefined => {
    const v = values.get(k);
    return v?.type === 'int' && (v.value === 0 || v.value === 1) ? v.value === 1 : undefined;
  };
  const conf: QemuConf = {};
  const set = <K extends keyof QemuConf>(k: K, v: QemuConf[K] | undefined): void => {
    if (v !== undefined) conf[k] = v;
  };
  set('vncListen', str('vnc_listen'));
  set('vncTls', bool('vnc_tls'));
  set('vncPasswordSet', str('vnc_password') !== undefined ? true : undefined);
  set('vncAutoUnixSocket', bool('vnc_auto_unix_socket'));
  set('vncSasl', bool('vnc_sasl'));
  set('spiceListen', str('spice_listen'));
  set('spiceTls', bool('spice_tls'));
  set('spicePasswordSet', str('spice_password') !== undefined ? true : undefined);
  set('spiceAutoUnixSocket', bool('spice_auto_unix_socket'));
  set('syntaxError', error);
  return conf;
}
