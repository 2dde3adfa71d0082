/**
 * The demo site's VM consoles: a small VNC server speaking RFB 3.8
 * (RFC 6143, also accepting 3.3 and 3.7 clients) that shows a live,
 * self-drawn screen: the VM name, a clock, a bouncing square, and echoes of
 * the keys, pointer and clipboard it receives. Demo code only: no real code
 * path uses it; it exists so `npm start` shows a working browser console with
 * no hypervisor anywhere.
 */
import net from 'node:net';
import { debuglog } from 'node:util';
import { VmdeskError } from '../errors.js';
import { CELL_HEIGHT, CELL_WIDTH, GLYPH_HEIGHT, GLYPH_WIDTH, isGlyphPixelSet } from './bitmap-font.js';

const debug = debuglog('vmdesk:demo-rfb');

export interface DemoConsoleOptions {
  /** The VM name: shown on the screen and sent as the RFB desktop name. */
  name: string;
  width?: number;
  height?: number;
  host?: string;
  port?: number;
  /** Screen theme colour (e.g. '#1e3a5f'); a default per name otherwise. */
  background?: string;
}

// ---------------------------------------------------------------------------
// The scene: pure drawing into an RGB framebuffer (3 bytes per pixel).

type Rgb = readonly [number, number, number];

/** A rectangle in framebuffer pixels. */
export interface SceneRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where the scene draws each of its parts, for a given screen size. */
export interface SceneLayout {
  header: SceneRect;
  clock: SceneRect;
  /** The line echoing typed characters (below its "typed:" label). */
  typed: SceneRect;
  /** The line showing the last pasted clipboard text (below its label). */
  clipboard: SceneRect;
  /** The framed box the square bounces in. */
  arena: SceneRect;
}

/** Everything one frame of the scene depends on. */
export interface SceneState {
  width: number;
  height: number;
  name: string;
  /** Theme colour as '#rrggbb' or '#rgb'. */
  background: string;
  /** Wall-clock time shown by the clock (local time). */
  now: Date;
  /** Time since the console started; drives the bouncing square. */
  elapsedMs: number;
  typed: string;
  clipboard: string;
  /** Last pointer position and button mask; no marker when undefined. */
  pointer?: { x: number; y: number; buttons: number };
}

const MARGIN = 16;
const TEXT_SCALE = 2;
const TEXT_LINE = CELL_HEIGHT * TEXT_SCALE;
/** From a label's top to the top of the value line under it. */
const LABEL_STEP = TEXT_LINE + 2;
const NAME_MAX_SCALE = 4;
const CLOCK_SCALE = 3;
const SQUARE_SIZE = 36;
const SQUARE_SPEED_X = 170; // px/s
const SQUARE_SPEED_Y = 115; // px/s

const WHITE: Rgb = [0xff, 0xff, 0xff];
const BLACK: Rgb = [0, 0, 0];
const TEXT_BRIGHT: Rgb = [0xf2, 0xf5, 0xf8];
const TEXT_DIM: Rgb = [0xb4, 0xc0, 0xcc];
const TEXT_LABEL: Rgb = [0x8e, 0xcb, 0xff];
const SQUARE_COLOUR: Rgb = [0xff, 0x8a, 0x3d];
const POINTER_COLOUR: Rgb = [0xff, 0xd0, 0x40];
const POINTER_PRESSED: Rgb = [0xff, 0x50, 0x50];

/** Dark theme colours picked per VM name when none is given. */
const DEFAULT_BACKGROUNDS = ['#1e3a5f', '#2e2257', '#1d4a3f', '#4a1f33', '#1f4350', '#3d2f1c', '#2b3245'];

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [Math.round(a[0] + (b[0] - a[0]) * t), Math.round(a[1] + (b[1] - a[1]) * t), Math.round(a[2] + (b[2] - a[2]) * t)];
}

function parseColour(text: string): Rgb | undefined {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(text.trim());
  if (!m) return undefined;
  const hex = m[1]!.length === 3 ? [...m[1]!].map((c) => c + c).join('') : m[1]!;
  return [parseInt(hex.slice(0, 2), 16), parseInt(hex.slice(2, 4), 16), parseInt(hex.slice(4, 6), 16)];
}

function defaultBackground(name: string): string {
  let hash = 0x811c9dc5; // FNV-1a: a stable colour per name across runs
  for (const byte of Buffer.from(name)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return DEFAULT_BACKGROUNDS[hash % DEFAULT_BACKGROUNDS.length]!;
}

function nameScale(width: number, name: string): number {
  const fit = Math.floor((width - 2 * MARGIN) / (Math.max(1, name.length) * CELL_WIDTH));
  return Math.max(1, Math.min(NAME_MAX_SCALE, fit));
}

/** The scene's regions for a screen of this size (parts past the edges are clipped). */
export function sceneLayout(width: number, height: number): SceneLayout {
  const headerH = 64;
  const contentW = Math.max(0, width - 2 * MARGIN);
  const clockY = headerH + 42;
  const typedY = clockY + GLYPH_HEIGHT * CLOCK_SCALE + 16 + LABEL_STEP;
  const clipboardY = typedY + TEXT_LINE + 12 + LABEL_STEP;
  const arenaY = clipboardY + TEXT_LINE + 12 + TEXT_LINE + 12;
  return {
    header: { x: 0, y: 0, w: width, h: headerH },
    clock: { x: MARGIN, y: clockY, w: CELL_WIDTH * CLOCK_SCALE * 8, h: GLYPH_HEIGHT * CLOCK_SCALE },
    typed: { x: MARGIN, y: typedY, w: contentW, h: TEXT_LINE },
    clipboard: { x: MARGIN, y: clipboardY, w: contentW, h: TEXT_LINE },
    arena: { x: MARGIN, y: arenaY, w: contentW, h: Math.max(0, height - arenaY - MARGIN) },
  };
}

class Canvas {
  constructor(
    readonly rgb: Uint8Array,
    readonly width: number,
    readonly height: number,
  ) {}

  fill(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(0, Math.floor(x));
    const y0 = Math.max(0, Math.floor(y));
    const x1 = Math.min(this.width, Math.floor(x + w));
    const y1 = Math.min(this.height, Math.floor(y + h));
    if (x0 >= x1 || y0 >= y1) return;
    const rowStart = (y0 * this.width + x0) * 3;
    const rowBytes = (x1 - x0) * 3;
    for (let i = rowStart; i < rowStart + rowBytes; i += 3) {
      this.rgb[i] = c[0];
      this.rgb[i + 1] = c[1];
      this.rgb[i + 2] = c[2];
    }
    for (let yy = y0 + 1; yy < y1; yy++) {
      this.rgb.copyWithin((yy * this.width + x0) * 3, rowStart, rowStart + rowBytes);
    }
  }

  text(x: number, y: number, text: string, scale: number, c: Rgb): void {
    let cx = x;
    for (const ch of text) {
      if (cx >= this.width) break;
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        for (let row = 0; row < GLYPH_HEIGHT; row++) {
          if (isGlyphPixelSet(ch, col, row)) this.fill(cx + col * scale, y + row * scale, scale, scale, c);
        }
      }
      cx += CELL_WIDTH * scale;
    }
  }

  frame(r: SceneRect, thickness: number, c: Rgb): void {
    this.fill(r.x, r.y, r.w, thickness, c);
    this.fill(r.x, r.y + r.h - thickness, r.w, thickness, c);
    this.fill(r.x, r.y, thickness, r.h, c);
    this.fill(r.x + r.w - thickness, r.y, thickness, r.h, c);
  }
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Position along a back-and-forth path of length `range` after travelling `distance`. */
function bounce(distance: number, range: number): number {
  if (range <= 0) return 0;
  const m = distance % (2 * range);
  return m <= range ? m : 2 * range - m;
}

/** Only what the 5x7 font can draw, one line: controls become spaces. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (ch) => (ch === '\n' || ch === '\r' || ch === '\t' ? ' ' : '?'));
}

function buttonNames(mask: number): string {
  const names: string[] = [];
  for (let b = 0; b < 8; b++) if (mask & (1 << b)) names.push(String(b + 1));
  return names.length ? names.join('+') : 'none';
}

/** Draw one frame of the demo scene into `into` (or a new buffer): RGB, 3 bytes per pixel. */
export function renderScene(state: SceneState, into?: Uint8Array): Uint8Array {
  const { width, height } = state;
  const rgb = into ?? new Uint8Array(width * height * 3);
  const canvas = new Canvas(rgb, width, height);
  const bg = parseColour(state.background) ?? parseColour(defaultBackground(state.name))!;
  const layout = sceneLayout(width, height);
  const textW = CELL_WIDTH * TEXT_SCALE;
  const maxChars = Math.max(0, Math.floor(layout.typed.w / textW));

  canvas.fill(0, 0, width, height, bg);

  const name = printable(state.name) || '(unnamed)';
  const scale = nameScale(width, name);
  canvas.fill(layout.header.x, layout.header.y, layout.header.w, layout.header.h, mix(bg, WHITE, 0.12));
  canvas.fill(0, layout.header.h, width, 3, mix(bg, TEXT_LABEL, 0.6));
  canvas.text(MARGIN, Math.round((layout.header.h - (GLYPH_HEIGHT - 1) * scale) / 2), name, scale, TEXT_BRIGHT);

  canvas.text(MARGIN, layout.header.h + 16, 'vmdesk demo VM - simulated console', TEXT_SCALE, TEXT_DIM);

  const t = state.now;
  const clock = `${pad2(t.getHours())}:${pad2(t.getMinutes())}:${pad2(t.getSeconds())}`;
  canvas.text(layout.clock.x, layout.clock.y, clock, CLOCK_SCALE, TEXT_BRIGHT);

  canvas.text(layout.typed.x, layout.typed.y - LABEL_STEP, 'typed:', TEXT_SCALE, TEXT_LABEL);
  const typed = `${printable(state.typed)}_`;
  canvas.text(layout.typed.x, layout.typed.y, typed.slice(-maxChars), TEXT_SCALE, TEXT_BRIGHT);

  canvas.text(layout.clipboard.x, layout.clipboard.y - LABEL_STEP, 'clipboard:', TEXT_SCALE, TEXT_LABEL);
  const clip = state.clipboard ? printable(state.clipboard) : '(nothing pasted yet)';
  canvas.text(layout.clipboard.x, layout.clipboard.y, clip.slice(0, maxChars), TEXT_SCALE, state.clipboard ? TEXT_BRIGHT : TEXT_DIM);

  const p = state.pointer;
  const pointerLine = p ? `pointer: ${p.x},${p.y}  buttons: ${buttonNames(p.buttons)}` : 'pointer: (not moved yet)';
  canvas.text(MARGIN, layout.clipboard.y + TEXT_LINE + 12, pointerLine, TEXT_SCALE, TEXT_DIM);

  const arena = layout.arena;
  if (arena.w > 8 && arena.h > 8) {
    canvas.fill(arena.x, arena.y, arena.w, arena.h, mix(bg, BLACK, 0.3));
    canvas.frame(arena, 2, mix(bg, WHITE, 0.25));
    const inner = { x: arena.x + 2, y: arena.y + 2, w: arena.w - 4, h: arena.h - 4 };
    const size = Math.min(SQUARE_SIZE, inner.w, inner.h);
    const seconds = state.elapsedMs / 1000;
    const sx = inner.x + bounce(seconds * SQUARE_SPEED_X, inner.w - size);
    const sy = inner.y + bounce(seconds * SQUARE_SPEED_Y, inner.h - size);
    canvas.fill(sx, sy, size, size, SQUARE_COLOUR);
  }

  if (p) {
    const c = p.buttons ? POINTER_PRESSED : POINTER_COLOUR;
    const arm = 7;
    canvas.fill(p.x - arm - 1, p.y - 2, 2 * arm + 3, 5, BLACK);
    canvas.fill(p.x - 2, p.y - arm - 1, 5, 2 * arm + 3, BLACK);
    canvas.fill(p.x - arm, p.y - 1, 2 * arm + 1, 3, c);
    canvas.fill(p.x - 1, p.y - arm, 3, 2 * arm + 1, c);
  }
  return rgb;
}

// ---------------------------------------------------------------------------
// RFB: pixel formats (RFC 6143 s7.4).

interface PixelFormat {
  bitsPerPixel: number;
  depth: number;
  isBigEndian: boolean;
  isTrueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** What ServerInit announces: 32bpp, depth 24, little-endian xRGB. */
const SERVER_PIXEL_FORMAT: PixelFormat = {
  bitsPerPixel: 32,
  depth: 24,
  isBigEndian: false,
  isTrueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
};

function encodePixelFormat(f: PixelFormat): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(f.bitsPerPixel, 0);
  b.writeUInt8(f.depth, 1);
  b.writeUInt8(f.isBigEndian ? 1 : 0, 2);
  b.writeUInt8(f.isTrueColour ? 1 : 0, 3);
  b.writeUInt16BE(f.redMax, 4);
  b.writeUInt16BE(f.greenMax, 6);
  b.writeUInt16BE(f.blueMax, 8);
  b.writeUInt8(f.redShift, 10);
  b.writeUInt8(f.greenShift, 11);
  b.writeUInt8(f.blueShift, 12);
  return b;
}

function decodePixelFormat(b: Buffer, at: number): PixelFormat {
  return {
    bitsPerPixel: b.readUInt8(at),
    depth: b.readUInt8(at + 1),
    isBigEndian: b.readUInt8(at + 2) !== 0,
    isTrueColour: b.readUInt8(at + 3) !== 0,
    redMax: b.readUInt16BE(at + 4),
    greenMax: b.readUInt16BE(at + 6),
    blueMax: b.readUInt16BE(at + 8),
    redShift: b.readUInt8(at + 10),
    greenShift: b.readUInt8(at + 11),
    blueShift: b.readUInt8(at + 12),
  };
}

/** Converts 8-bit RGB into one client pixel format, one table per channel. */
class PixelEncoder {
  readonly bytesPerPixel: number;
  /** Byte offsets of red, green, blue when the format is 32bpp with whole-byte channels; else undefined. */
  private readonly byteOffsets: readonly [number, number, number] | undefined;
  private readonly red = new Uint32Array(256);
  private readonly green = new Uint32Array(256);
  private readonly blue = new Uint32Array(256);

  constructor(private readonly format: PixelFormat) {
    this.bytesPerPixel = format.bitsPerPixel / 8;
    const f = format;
    this.byteOffsets = undefined;
    const shifts = [f.redShift, f.greenShift, f.blueShift];
    const isWholeBytes = f.redMax === 255 && f.greenMax === 255 && f.blueMax === 255 && shifts.every((sh) => sh % 8 === 0 && sh <= 24);
    if (f.bitsPerPixel === 32 && isWholeBytes && new Set(shifts).size === 3) {
      const offset = (shift: number): number => (f.isBigEndian ? 3 - shift / 8 : shift / 8);
      this.byteOffsets = [offset(f.redShift), offset(f.greenShift), offset(f.blueShift)];
    }
    const fillTable = (table: Uint32Array, max: number, shift: number): void => {
      for (let v = 0; v < 256; v++) table[v] = shift < 32 ? (Math.round((v * max) / 255) << shift) >>> 0 : 0;
    };
    fillTable(this.red, f.redMax, f.redShift);
    fillTable(this.green, f.greenMax, f.greenShift);
    fillTable(this.blue, f.blueMax, f.blueShift);
  }

  /** Write the pixels of `r` from the RGB framebuffer into `out` at `offset`; returns the new offset. */
  encode(rgb: Uint8Array, fbWidth: number, r: SceneRect, out: Buffer, offset: number): number {
    let o = offset;
    for (let y = r.y; y < r.y + r.h; y++) {
      let i = (y * fbWidth + r.x) * 3;
      const end = i + r.w * 3;
      if (this.byteOffsets) {
        // The common case (the server's own format, noVNC's RGBX): a byte shuffle.
        const [ro, go, bo] = this.byteOffsets;
        for (; i < end; i += 3, o += 4) {
          out.writeUInt32LE(0, o);
          out[o + ro] = rgb[i]!;
          out[o + go] = rgb[i + 1]!;
          out[o + bo] = rgb[i + 2]!;
        }
        continue;
      }
      for (; i < end; i += 3) {
        const v = (this.red[rgb[i]!]! | this.green[rgb[i + 1]!]! | this.blue[rgb[i + 2]!]!) >>> 0;
        if (this.bytesPerPixel === 1) out[o] = v & 0xff;
        else if (this.bytesPerPixel === 2) {
          if (this.format.isBigEndian) out.writeUInt16BE(v & 0xffff, o);
          else out.writeUInt16LE(v & 0xffff, o);
        } else if (this.format.isBigEndian) out.writeUInt32BE(v, o);
        else out.writeUInt32LE(v, o);
        o += this.bytesPerPixel;
      }
    }
    return o;
  }
}

// ---------------------------------------------------------------------------
// RFB: one client connection, parsed incrementally by protocol phase.

const PROTOCOL_VERSION = 'RFB 003.008\n';
const SECURITY_NONE = 1;
const ENCODING_RAW = 0;
const ENCODING_DESKTOP_SIZE = -223;
const TILE_WIDTH = 32;
const TILE_HEIGHT = 16;
/** Above this many queued bytes, updates wait for 'drain' (bounded memory per client). */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
const TYPED_MAX_CHARS = 60;
const CLIPBOARD_MAX_CHARS = 60;
/** Clipboard bytes kept from one ClientCutText; the rest is read and dropped. */
const CLIPBOARD_KEEP_BYTES = 1024;

const KEYSYM_BACKSPACE = 0xff08;
const KEYSYM_RETURN = 0xff0d;
const KEYSYM_KP_ENTER = 0xff8d;

const MSG_SET_PIXEL_FORMAT = 0;
const MSG_SET_ENCODINGS = 2;
const MSG_FRAMEBUFFER_UPDATE_REQUEST = 3;
const MSG_KEY_EVENT = 4;
const MSG_POINTER_EVENT = 5;
const MSG_CLIENT_CUT_TEXT = 6;

type Phase = 'version' | 'security' | 'client-init' | 'normal' | 'closed';
type RfbMinor = 3 | 7 | 8;

interface UpdateRequest extends SceneRect {
  isIncremental: boolean;
}

/** A ClientCutText payload still arriving: streamed so a huge paste never sits in memory. */
interface CutTextInProgress {
  remainingBytes: number;
  isExtended: boolean;
  kept: Buffer[];
  keptBytes: number;
}

/** What the connection needs from the console that owns it. */
interface ConsoleHost {
  readonly width: number;
  readonly height: number;
  readonly name: string;
  framebuffer(): Uint8Array;
  onKey(keysym: number, isDown: boolean): void;
  onPointer(x: number, y: number, buttons: number): void;
  onClipboard(text: string): void;
  onClientReady(): void;
}

class RfbConnection {
  private phase: Phase = 'version';
  private minor: RfbMinor = 8;
  private input: Buffer = Buffer.alloc(0);
  private encoder = new PixelEncoder(SERVER_PIXEL_FORMAT);
  private pending: UpdateRequest | undefined;
  private cutText: CutTextInProgress | undefined;
  private isWaitingForDrain = false;
  /** Tiles changed since this client last received them. */
  private readonly dirty: Uint8Array;
  private readonly tilesX: number;
  /** Set from SetEncodings; the demo never resizes, so it is only remembered. */
  supportsDesktopSize = false;
  readonly peer: string;

  constructor(
    private readonly socket: net.Socket,
    private readonly host: ConsoleHost,
  ) {
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.tilesX = Math.ceil(host.width / TILE_WIDTH);
    // All dirty: even a first request that is incremental gets the whole screen.
    this.dirty = new Uint8Array(this.tilesX * Math.ceil(host.height / TILE_HEIGHT)).fill(1);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => debug('%s: socket error: %s', this.peer, err.message));
    socket.on('close', () => {
      this.phase = 'closed';
    });
    socket.write(PROTOCOL_VERSION);
  }

  /** Mark tiles changed by the latest redraw and answer a waiting request. */
  markDirty(changedTiles: Uint8Array): void {
    for (let i = 0; i < changedTiles.length; i++) if (changedTiles[i]) this.dirty[i] = 1;
    this.flush();
  }

  close(reason?: string): void {
    if (reason) debug('%s: %s; closing the connection', this.peer, reason);
    this.phase = 'closed';
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    let offset = 0;
    while (this.phase !== 'closed' && offset < this.input.length) {
      const used = this.step(this.input, offset);
      if (used === 0) break;
      offset += used;
    }
    // Copy the leftover so one large chunk is not kept alive by a few bytes.
    this.input = offset >= this.input.length ? Buffer.alloc(0) : Buffer.from(this.input.subarray(offset));
  }

  /** Consume one message (or part of a streamed one) at `at`; 0 when more bytes are needed. */
  private step(b: Buffer, at: number): number {
    const available = b.length - at;
    switch (this.phase) {
      case 'version':
        return available < 12 ? 0 : this.onVersion(b.toString('latin1', at, at + 12));
      case 'security':
        return this.onSecurityChoice(b.readUInt8(at));
      case 'client-init':
        // The shared flag is ignored: every client shares the one demo screen.
        this.sendServerInit();
        return 1;
      case 'normal':
        return this.cutText ? this.continueCutText(b, at, available) : this.onMessage(b, at, available);
      case 'closed':
        return 0;
    }
  }

  /** RFC 6143 s7.1.1: 3.3, 3.7 and 3.8 exist; any other version is read as 3.3. */
  private onVersion(text: string): number {
    const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(text);
    if (!m) {
      this.close(`not an RFB client (version string ${JSON.stringify(text)})`);
      return 0;
    }
    const major = Number(m[1]);
    const minor = Number(m[2]);
    this.minor = major === 3 && (minor === 7 || minor === 8) ? minor : 3;
    if (this.minor === 3) {
      // RFC 6143 s7.1.2: 3.3 servers name the one security type as a u32.
      const type = Buffer.alloc(4);
      type.writeUInt32BE(SECURITY_NONE);
      this.socket.write(type);
      this.phase = 'client-init';
    } else {
      this.socket.write(Buffer.from([1, SECURITY_NONE]));
      this.phase = 'security';
    }
    return 12;
  }

  private onSecurityChoice(type: number): number {
    if (type !== SECURITY_NONE) {
      if (this.minor === 8) {
        const reason = Buffer.from('only security type None (1) is offered');
        const msg = Buffer.alloc(8);
        msg.writeUInt32BE(1, 0);
        msg.writeUInt32BE(reason.length, 4);
        this.socket.write(Buffer.concat([msg, reason]));
      }
      this.close(`client chose security type ${type}, only None is offered`);
      return 0;
    }
    // RFC 6143 s7.1.3: 3.8 sends SecurityResult even for None; 3.7 does not.
    if (this.minor === 8) this.socket.write(Buffer.from([0, 0, 0, 0]));
    this.phase = 'client-init';
    return 1;
  }

  private sendServerInit(): void {
    const name = Buffer.from(this.host.name, 'utf8');
    const head = Buffer.alloc(4);
    head.writeUInt16BE(this.host.width, 0);
    head.writeUInt16BE(this.host.height, 2);
    const nameLength = Buffer.alloc(4);
    nameLength.writeUInt32BE(name.length);
    this.socket.write(Buffer.concat([head, encodePixelFormat(SERVER_PIXEL_FORMAT), nameLength, name]));
    this.phase = 'normal';
    this.host.onClientReady();
  }

  private onMessage(b: Buffer, at: number, available: number): number {
    const type = b.readUInt8(at);
    switch (type) {
      case MSG_SET_PIXEL_FORMAT: {
        if (available < 20) return 0;
        const format = decodePixelFormat(b, at + 4);
        if (!format.isTrueColour) {
          this.close('client asked for a colour-map pixel format (RFC 6143 s7.5.1); this demo server only does true colour');
          return 0;
        }
        if (format.bitsPerPixel !== 8 && format.bitsPerPixel !== 16 && format.bitsPerPixel !== 32) {
          this.close(`client asked for ${format.bitsPerPixel} bits per pixel; RFC 6143 allows 8, 16 or 32`);
          return 0;
        }
        this.encoder = new PixelEncoder(format);
        return 20;
      }
      case MSG_SET_ENCODINGS: {
        if (available < 4) return 0;
        const count = b.readUInt16BE(at + 2);
        const size = 4 + 4 * count;
        if (available < size) return 0;
        this.supportsDesktopSize = false;
        for (let i = 0; i < count; i++) {
          if (b.readInt32BE(at + 4 + 4 * i) === ENCODING_DESKTOP_SIZE) this.supportsDesktopSize = true;
        }
        return size;
      }
      case MSG_FRAMEBUFFER_UPDATE_REQUEST: {
        if (available < 10) return 0;
        this.request({
          isIncremental: b.readUInt8(at + 1) !== 0,
          x: b.readUInt16BE(at + 2),
          y: b.readUInt16BE(at + 4),
          w: b.readUInt16BE(at + 6),
          h: b.readUInt16BE(at + 8),
        });
        return 10;
      }
      case MSG_KEY_EVENT:
        if (available < 8) return 0;
        this.host.onKey(b.readUInt32BE(at + 4), b.readUInt8(at + 1) !== 0);
        return 8;
      case MSG_POINTER_EVENT:
        if (available < 6) return 0;
        this.host.onPointer(b.readUInt16BE(at + 2), b.readUInt16BE(at + 4), b.readUInt8(at + 1));
        return 6;
      case MSG_CLIENT_CUT_TEXT: {
        if (available < 8) return 0;
        const length = b.readInt32BE(at + 4);
        // A negative length is the Extended Clipboard pseudo-encoding's form
        // (rfbproto "Extended Clipboard"); its |length| bytes are skipped.
        this.cutText = { remainingBytes: Math.abs(length), isExtended: length < 0, kept: [], keptBytes: 0 };
        if (length === 0) this.finishCutText();
        return 8;
      }
      default:
        this.close(`unknown client message type ${type}`);
        return 0;
    }
  }

  private continueCutText(b: Buffer, at: number, available: number): number {
    const cut = this.cutText!;
    const take = Math.min(available, cut.remainingBytes);
    if (!cut.isExtended && cut.keptBytes < CLIPBOARD_KEEP_BYTES) {
      const keep = b.subarray(at, at + Math.min(take, CLIPBOARD_KEEP_BYTES - cut.keptBytes));
      cut.kept.push(Buffer.from(keep));
      cut.keptBytes += keep.length;
    }
    cut.remainingBytes -= take;
    if (cut.remainingBytes === 0) this.finishCutText();
    return take;
  }

  private finishCutText(): void {
    const cut = this.cutText!;
    this.cutText = undefined;
    // RFC 6143 s7.5.6: ClientCutText is ISO 8859-1.
    if (!cut.isExtended) this.host.onClipboard(Buffer.concat(cut.kept).toString('latin1'));
  }

  private request(req: UpdateRequest): void {
    const p = this.pending;
    if (p) {
      const x0 = Math.min(p.x, req.x);
      const y0 = Math.min(p.y, req.y);
      const x1 = Math.max(p.x + p.w, req.x + req.w);
      const y1 = Math.max(p.y + p.h, req.y + req.h);
      this.pending = { isIncremental: p.isIncremental && req.isIncremental, x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
    } else {
      this.pending = req;
    }
    this.flush();
  }

  /**
   * Answer the pending FramebufferUpdateRequest if there is something to
   * send. RFC 6143 s7.5.3: an update goes out only in reply to a request,
   * which is the protocol's flow control; an incremental request waits for
   * a change.
   */
  private flush(): void {
    const req = this.pending;
    if (!req || this.phase !== 'normal' || this.isWaitingForDrain) return;
    if (this.socket.writableLength > HIGH_WATER_BYTES) {
      this.isWaitingForDrain = true;
      this.socket.once('drain', () => {
        this.isWaitingForDrain = false;
        this.flush();
      });
      return;
    }
    const area = clipRect(req, this.host.width, this.host.height);
    const rects = req.isIncremental ? this.takeDirty(area) : this.takeFull(area);
    if (req.isIncremental && rects.length === 0) return;
    this.pending = undefined;
    this.sendUpdate(rects);
  }

  /** Dirty tiles meeting `area`, clipped to it, run-length merged per tile row; clears them. */
  private takeDirty(area: SceneRect): SceneRect[] {
    const rects: SceneRect[] = [];
    if (area.w === 0 || area.h === 0) return rects;
    const tx0 = Math.floor(area.x / TILE_WIDTH);
    const tx1 = Math.ceil((area.x + area.w) / TILE_WIDTH);
    const ty0 = Math.floor(area.y / TILE_HEIGHT);
    const ty1 = Math.ceil((area.y + area.h) / TILE_HEIGHT);
    for (let ty = ty0; ty < ty1; ty++) {
      let runStart = -1;
      for (let tx = tx0; tx <= tx1; tx++) {
        const i = ty * this.tilesX + tx;
        const isDirty = tx < tx1 && this.dirty[i] === 1;
        if (isDirty) {
          // Partly requested tiles are cleared too: a client that widens its
          // interest asks non-incrementally for the new area (RFC 6143 s7.5.3).
          this.dirty[i] = 0;
          if (runStart < 0) runStart = tx;
        } else if (runStart >= 0) {
          const run = { x: runStart * TILE_WIDTH, y: ty * TILE_HEIGHT, w: (tx - runStart) * TILE_WIDTH, h: TILE_HEIGHT };
          rects.push(intersect(run, area));
          runStart = -1;
        }
      }
    }
    return rects;
  }

  /** The whole requested area; clears the tiles it fully covers. */
  private takeFull(area: SceneRect): SceneRect[] {
    if (area.w === 0 || area.h === 0) return [];
    for (let i = 0; i < this.dirty.length; i++) {
      const tile = clipRect(tileRect(i, this.tilesX), this.host.width, this.host.height);
      if (tile.x >= area.x && tile.y >= area.y && tile.x + tile.w <= area.x + area.w && tile.y + tile.h <= area.y + area.h) this.dirty[i] = 0;
    }
    return [area];
  }

  private sendUpdate(rects: SceneRect[]): void {
    const bpp = this.encoder.bytesPerPixel;
    let size = 4;
    for (const r of rects) size += 12 + r.w * r.h * bpp;
    const out = Buffer.allocUnsafe(size);
    out.writeUInt8(0, 0); // FramebufferUpdate
    out.writeUInt8(0, 1);
    out.writeUInt16BE(rects.length, 2);
    let o = 4;
    for (const r of rects) {
      out.writeUInt16BE(r.x, o);
      out.writeUInt16BE(r.y, o + 2);
      out.writeUInt16BE(r.w, o + 4);
      out.writeUInt16BE(r.h, o + 6);
      out.writeInt32BE(ENCODING_RAW, o + 8);
      o = this.encoder.encode(this.host.framebuffer(), this.host.width, r, out, o + 12);
    }
    this.socket.write(out);
  }
}

function tileRect(index: number, tilesX: number): SceneRect {
  return { x: (index % tilesX) * TILE_WIDTH, y: Math.floor(index / tilesX) * TILE_HEIGHT, w: TILE_WIDTH, h: TILE_HEIGHT };
}

function clipRect(r: SceneRect, width: number, height: number): SceneRect {
  return intersect(r, { x: 0, y: 0, w: width, h: height });
}

function intersect(a: SceneRect, b: SceneRect): SceneRect {
  const x0 = Math.max(a.x, b.x);
  const y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.w, b.x + b.w);
  const y1 = Math.min(a.y + a.h, b.y + b.h);
  return x1 <= x0 || y1 <= y0 ? { x: x0, y: y0, w: 0, h: 0 } : { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

// ---------------------------------------------------------------------------
// The console: one framebuffer, redrawn on a timer and on input, shared by
// every connected client.

const REDRAW_INTERVAL_MS = 250;
const MAX_DIMENSION = 4096;

/** A demo VM console: a VNC server (RFB 3.8, security None) drawing a live screen. */
export class DemoConsole {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly background: string;
  private front: Buffer;
  private back: Buffer;
  private readonly changedTiles: Uint8Array;
  private readonly startedAt = Date.now();
  private typed = '';
  private clipboard = '';
  private pointer: SceneState['pointer'];
  private server: net.Server | undefined;
  private starting: Promise<number> | undefined;
  private boundPort = 0;
  private timer: NodeJS.Timeout | undefined;
  private isRedrawScheduled = false;
  private readonly connections = new Map<net.Socket, RfbConnection>();

  constructor(opts: DemoConsoleOptions) {
    this.name = opts.name;
    this.width = opts.width ?? 800;
    this.height = opts.height ?? 480;
    this.host = opts.host ?? '127.0.0.1';
    this.requestedPort = opts.port ?? 0;
    for (const [key, value] of [['width', this.width], ['height', this.height]] as const) {
      if (!Number.isInteger(value) || value < 1 || value > MAX_DIMENSION) {
        throw new VmdeskError('CONFIG_INVALID', `demo console ${key} must be an integer from 1 to ${MAX_DIMENSION}, got ${value}`, { context: { vm: opts.name } });
      }
    }
    this.background = opts.background ?? defaultBackground(opts.name);
    if (!parseColour(this.background)) {
      throw new VmdeskError('CONFIG_INVALID', `demo console background must be '#rrggbb' or '#rgb', got ${JSON.stringify(this.background)}`, { context: { vm: opts.name } });
    }
    this.front = Buffer.alloc(this.width * this.height * 3);
    this.back = Buffer.alloc(this.width * this.height * 3);
    this.changedTiles = new Uint8Array(Math.ceil(this.width / TILE_WIDTH) * Math.ceil(this.height / TILE_HEIGHT));
    renderScene(this.sceneState(), this.front);
  }

  /** Listen for RFB clients; resolves the bound port. */
  start(): Promise<number> {
    this.starting ??= this.listen().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async listen(): Promise<number> {
    if (this.server) return this.boundPort;
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.requestedPort, this.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.server = undefined;
      const code = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'LISTEN_FAILED';
      throw new VmdeskError(code, `demo console for ${this.name} cannot listen on ${this.host}:${this.requestedPort}`, {
        cause: err,
        context: { vm: this.name, host: this.host, port: this.requestedPort },
      });
    }
    server.on('error', (err) => debug('listener error: %s', err.message));
    this.boundPort = (server.address() as net.AddressInfo).port;
    this.timer = setInterval(() => this.redraw(), REDRAW_INTERVAL_MS);
    this.timer.unref();
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Connected RFB clients (including ones still in the handshake). */
  get clientCount(): number {
    return this.connections.size;
  }

  /** Close the listener and every client connection. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const server = this.server;
    this.server = undefined;
    for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const connection = new RfbConnection(socket, {
      width: this.width,
      height: this.height,
      name: this.name,
      framebuffer: () => this.front,
      onKey: (keysym, isDown) => this.onKey(keysym, isDown),
      onPointer: (x, y, buttons) => {
        this.pointer = { x, y, buttons };
        this.scheduleRedraw();
      },
      onClipboard: (text) => {
        this.clipboard = text.slice(0, CLIPBOARD_MAX_CHARS);
        this.scheduleRedraw();
      },
      // The screen may be up to a tick stale when the first client arrives.
      onClientReady: () => this.redraw(),
    });
    this.connections.set(socket, connection);
    socket.on('close', () => this.connections.delete(socket));
  }

  private onKey(keysym: number, isDown: boolean): void {
    if (!isDown) return;
    if (keysym >= 0x20 && keysym <= 0x7e) this.typed = (this.typed + String.fromCharCode(keysym)).slice(-TYPED_MAX_CHARS);
    else if (keysym === KEYSYM_BACKSPACE) this.typed = this.typed.slice(0, -1);
    else if (keysym === KEYSYM_RETURN || keysym === KEYSYM_KP_ENTER) this.typed = '';
    else return;
    this.scheduleRedraw();
  }

  private scheduleRedraw(): void {
    if (this.isRedrawScheduled) return;
    this.isRedrawScheduled = true;
    setImmediate(() => {
      this.isRedrawScheduled = false;
      this.redraw();
    });
  }

  private sceneState(): SceneState {
    const now = new Date();
    return {
      width: this.width,
      height: this.height,
      name: this.name,
      background: this.background,
      now,
      elapsedMs: now.getTime() - this.startedAt,
      typed: this.typed,
      clipboard: this.clipboard,
      ...(this.pointer ? { pointer: this.pointer } : {}),
    };
  }

  /** Draw the next frame, find the tiles that changed, and tell every client. */
  private redraw(): void {
    if (this.connections.size === 0) return;
    renderScene(this.sceneState(), this.back);
    const tilesX = Math.ceil(this.width / TILE_WIDTH);
    let isChanged = false;
    this.changedTiles.fill(0);
    for (let y = 0; y < this.height; y++) {
      const ty = Math.floor(y / TILE_HEIGHT);
      for (let tx = 0; tx < tilesX; tx++) {
        const i = ty * tilesX + tx;
        if (this.changedTiles[i]) continue;
        const start = (y * this.width + tx * TILE_WIDTH) * 3;
        const end = (y * this.width + Math.min((tx + 1) * TILE_WIDTH, this.width)) * 3;
        if (this.front.compare(this.back, start, end, start, end) !== 0) {
          this.changedTiles[i] = 1;
          isChanged = true;
        }
      }
    }
    [this.front, this.back] = [this.back, this.front];
    if (!isChanged) return;
    for (const connection of this.connections.values()) connection.markDirty(this.changedTiles);
  }
}
