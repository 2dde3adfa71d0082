/**
 * Moves a domain's consoles to another listen address by editing the text of
 * `virsh dumpxml --inactive --security-info`, for `virsh define`. Only the
 * `<graphics>` elements of the chosen types change; every other byte (the
 * `passwd` value, attribute order, quoting, indentation, metadata) is kept, so
 * the define cannot drop or reformat anything libvirt or another tool wrote.
 * Pure. Element grammar per XML 1.0 section 3.1; graphics per
 * https://libvirt.org/formatdomain.html#graphical-framebuffers.
 */
import { isIP } from 'node:net';
import { VmdeskError } from '../errors.js';
import { parseDomainXml } from './domain-xml.js';

/** The result of setGraphicsListen. */
export interface GraphicsListenEdit {
  /** The document with the edit applied (the input itself when nothing changed). */
  xml: string;
  isChanged: boolean;
  /** What the edited consoles listened on before, in document order: addresses, or `network:NAME`. */
  before: string[];
}

interface Attr {
  name: string;
  value: string;
  /** Offsets of the raw value between its quotes. */
  valueStart: number;
  valueEnd: number;
  quote: '"' | "'";
}

interface Element {
  name: string;
  parent: number;
  /** Offset of `<` of the start tag. */
  start: number;
  /** Offset just after the start tag's `>`. */
  tagEnd: number;
  /** Offset just after the element (its end tag, or the start tag when self-closing). */
  end: number;
  /** Where a new attribute goes: just after the last attribute (or the name). */
  attrInsert: number;
  attrs: Attr[];
}

function invalid(message: string): VmdeskError {
  return new VmdeskError('LIBVIRT_OUTPUT_INVALID', `virsh dumpxml: ${message}`);
}

const NAME_CHAR = /[^\s/>=]/;

function decode(raw: string): string {
  return raw.replace(/&(lt|gt|amp|apos|quot|#x[0-9a-fA-F]+|#[0-9]+);/g, (_m, e: string) => {
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'amp') return '&';
    if (e === 'apos') return "'";
    if (e === 'quot') return '"';
    return String.fromCodePoint(e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

/** Escapes an attribute value for either quote style (XML 1.0 section 2.3, AttValue). */
function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** Every element of the document with its offsets; comments, CDATA, PIs and the doctype are skipped. */
function scanElements(xml: string): Element[] {
  const elements: Element[] = [];
  const stack: number[] = [];
  let i = 0;
  const skipTo = (needle: string, from: number): number => {
    const j = xml.indexOf(needle, from);
    if (j < 0) throw invalid(`unterminated ${needle === '-->' ? 'comment' : needle === ']]>' ? 'CDATA section' : 'markup'}`);
    return j + needle.length;
  };
  while ((i = xml.indexOf('<', i)) >= 0) {
    if (xml.startsWith('<!--', i)) i = skipTo('-->', i + 4);
    else if (xml.startsWith('<![CDATA[', i)) i = skipTo(']]>', i + 9);
    else if (xml.startsWith('<?', i)) i = skipTo('?>', i + 2);
    else if (xml.startsWith('<!', i)) i = skipTo('>', i + 2);
    else if (xml[i + 1] === '/') {
      const close = skipTo('>', i + 2);
      const name = xml.slice(i + 2, close - 1).trim();
      const open = stack.pop();
      if (open === undefined || elements[open]!.name !== name) throw invalid(`unexpected </${name}>`);
      elements[open]!.end = close;
      i = close;
    } else {
      let j = i + 1;
      while (j < xml.length && NAME_CHAR.test(xml[j]!)) j++;
      const el: Element = { name: xml.slice(i + 1, j), parent: stack.at(-1) ?? -1, start: i, tagEnd: -1, end: -1, attrInsert: j, attrs: [] };
      if (el.name === '') throw invalid(`a '<' without an element name at offset ${i}`);
      for (;;) {
        while (j < xml.length && /\s/.test(xml[j]!)) j++;
        if (j >= xml.length) throw invalid(`unterminated <${el.name}> tag`);
        if (xml[j] === '>' || xml.startsWith('/>', j)) break;
        const nameStart = j;
        while (j < xml.length && NAME_CHAR.test(xml[j]!)) j++;
        const name = xml.slice(nameStart, j);
        while (/\s/.test(xml[j] ?? '')) j++;
        if (name === '' || xml[j] !== '=') throw invalid(`malformed attribute in <${el.name}>`);
        j++;
        while (/\s/.test(xml[j] ?? '')) j++;
        const quote = xml[j];
        if (quote !== '"' && quote !== "'") throw invalid(`unquoted attribute ${name} in <${el.name}>`);
        const valueEnd = xml.indexOf(quote, j + 1);
        if (valueEnd < 0) throw invalid(`unterminated attribute ${name} in <${el.name}>`);
        el.attrs.push({ name, value: decode(xml.slice(j + 1, valueEnd)), valueStart: j + 1, valueEnd, quote });
        j = valueEnd + 1;
        el.attrInsert = j;
      }
      const isSelfClosing = xml[j] === '/';
      el.tagEnd = j + (isSelfClosing ? 2 : 1);
      const index = elements.push(el) - 1;
      if (isSelfClosing) el.end = el.tagEnd;
      else stack.push(index);
      i = el.tagEnd;
    }
  }
  if (stack.length > 0) throw invalid(`<${elements[stack.at(-1)!]!.name}> is not closed`);
  return elements;
}

function attrOf(el: Element, name: string): Attr | undefined {
  return el.attrs.find((a) => a.name === name);
}

/** An IPv4 or IPv6 literal (brackets allowed around IPv6), as libvirt stores it; throws USAGE otherwise. */
export function normalizeListenAddress(address: string): string {
  const a = address.trim().replace(/^\[(.*)\]$/, '$1');
  // A zone index (fe80::1%eth0) names an interface of the hypervisor, which libvirt's listen address cannot carry.
  if (isIP(a) === 0 || a.includes('%')) {
    throw new VmdeskError('USAGE', `${JSON.stringify(address)} is not an IPv4 or IPv6 address`, {
      context: { address },
      hint: 'give an address literal such as 127.0.0.1, ::1 or 192.168.122.1; 127.0.0.1 keeps the console reachable only through SSH',
    });
  }
  return a;
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

/**
 * Sets the listen address of the domain's `<graphics>` of `types` (default VNC and SPICE) to `address`.
 * @example setGraphicsListen(xml, '127.0.0.1').xml // then `virsh define` it
 */
export function setGraphicsListen(xml: string, address: string, opts: { types?: string[] } = {}): GraphicsListenEdit {
  const addr = normalizeListenAddress(address);
  const types = opts.types ?? ['vnc', 'spice'];
  const domain = parseDomainXml(xml);
  const elements = scanElements(xml);
  const pathOf = (index: number): string => {
    const names: string[] = [];
    for (let i = index; i >= 0; i = elements[i]!.parent) names.unshift(elements[i]!.name);
    return names.join('/');
  };
  const targets = elements
    .map((el, index) => ({ el, index }))
    .filter(({ el, index }) => el.name === 'graphics' && types.includes(attrOf(el, 'type')?.value ?? '') && pathOf(index) === 'domain/devices/graphics');
  if (targets.length === 0) {
    throw new VmdeskError('VNC_NOT_CONFIGURED', `${domain.name} has no ${types.join(' or ')} console`, {
      context: { vm: domain.name },
      hint: "add one with `virsh edit`, e.g. <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>",
    });
  }

  const edits: Edit[] = [];
  const before: string[] = [];
  const quoted = (q: string, value: string): string => `${q}${escapeAttr(value)}${q}`;
  const setAttr = (el: Element, name: string, value: string): void => {
    const a = attrOf(el, name);
    // A new attribute follows the element's own quote style (libvirt writes single quotes).
    if (a === undefined) edits.push({ start: el.attrInsert, end: el.attrInsert, text: ` ${name}=${quoted(el.attrs.at(-1)?.quote ?? "'", value)}` });
    else if (a.value !== value) edits.push({ start: a.valueStart, end: a.valueEnd, text: escapeAttr(value) });
  };
  for (const { el: g, index } of targets) {
    const kind = attrOf(g, 'type')!.value;
    const listens = elements.filter((el) => el.parent === index && el.name === 'listen');
    const socketListen = listens.find((l) => attrOf(l, 'type')?.value === 'socket');
    const socketAttr = attrOf(g, 'socket');
    if (socketAttr !== undefined || socketListen !== undefined) {
      const path = socketAttr?.value ?? (socketListen && attrOf(socketListen, 'socket')?.value) ?? 'chosen by libvirt';
      throw new VmdeskError('GRAPHICS_EDIT_UNSUPPORTED', `the ${kind} console of ${domain.name} is the unix socket ${path}; vmdesk does not move a socket console to TCP`, {
        context: { vm: domain.name, kind, socket: path },
        hint: 'a socket console is not exposed, and vmdesk reaches it over SSH as it is; to change it anyway, use `virsh edit` on the hypervisor',
      });
    }
    if (listens.some((l) => attrOf(l, 'type')?.value === 'none')) {
      throw new VmdeskError('GRAPHICS_EDIT_UNSUPPORTED', `the ${kind} console of ${domain.name} has listen type none (no listener); vmdesk does not give it a TCP one`, {
        context: { vm: domain.name, kind },
        hint: 'to change it anyway, use `virsh edit` on the hypervisor',
      });
    }
    const listenAttr = attrOf(g, 'listen');
    if (listenAttr !== undefined) before.push(listenAttr.value);
    for (const l of listens) {
      const type = attrOf(l, 'type')?.value ?? 'address';
      if (type === 'network') {
        before.push(`network:${attrOf(l, 'network')?.value ?? '?'}`);
        const q = l.attrs[0]?.quote ?? "'";
        edits.push({ start: l.start, end: l.end, text: `<listen type=${q}address${q} address=${quoted(q, addr)}/>` });
      } else if (type === 'address') {
        const a = attrOf(l, 'address');
        if (a !== undefined) before.push(a.value);
        setAttr(l, 'address', addr);
      }
      // Other listen types (none, socket) were refused above; an unknown future type is left alone.
    }
    if (listenAttr !== undefined || listens.length === 0) setAttr(g, 'listen', addr);
  }

  let out = xml;
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  const result: GraphicsListenEdit = { xml: out, isChanged: out !== xml, before: [...new Set(before)] };
  if (result.isChanged) assertListensAt(out, addr, types);
  return result;
}

/** The edit must read back as intended; a miss here is a bug in the text surgery, never sent to `virsh define`. */
function assertListensAt(xml: string, addr: string, types: string[]): void {
  const d = parseDomainXml(xml);
  const ok = d.graphics.filter((g) => types.includes(g.type)).every((g) => g.listens.length > 0 && g.listens.every((l) => l.type === 'address' && l.address === addr));
  if (!ok) throw new VmdeskError('INTERNAL', 'the edited domain XML does not read back with the new listen address', { context: { vm: d.name } });
}
