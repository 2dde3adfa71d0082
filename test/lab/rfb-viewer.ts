/**
 * A minimal VNC viewer (RFB 3.8, RFC 6143) for lab tests and benches: the
 * handshake with security type None, 32 bpp true colour, Raw encoding, one
 * incremental FramebufferUpdateRequest kept outstanding (as noVNC does),
 * KeyEvents, and the framebuffer in memory to look at.
 *
 * What it looks for is the lab guest's VGA text screen (test/lab/libvirt):
 * light glyphs on black in 9x16 cells. The cursor (an underline in a cell's
 * last scanlines) blinks by itself, so glyph comparisons skip those scanlines.
 */
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';

/** VGA text mode: 16 scanlines per character cell, 9 pixels wide. */
export const CELL_HEIGHT = 16;
export const CELL_WIDTH = 9;
/** Scanlines 13..15 of a cell hold the underline cursor, which blinks; glyphs without descenders stay above. */
export const GLYPH_SCANLINES = 13;
/** How long pressKey holds a key down. */
export const KEY_HOLD_MS = 20;
/** Luma above which a pixel counts as text (the VGA console's grey is 0xAA: luma 170). */
export const LIGHT_LUMA = 160;

/** Where light glyph pixels changed between two bitmaps. */
export interface GlyphChange {
  pixels: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** One typed character's echo: a change inside one text row, at most two cells wide. */
export function isOneGlyph(c: GlyphChange): boolean {
  return c.x1 - c.x0 < 3 * CELL_WIDTH && Math.floor(c.y0 / CELL_HEIGHT) === Math.floor(c.y1 / CELL_HEIGHT);
}

/** Compares two glyph bitmaps (one byte per pixel, 1 = light) of a `width`-wide screen. */
export function glyphChange(before: Uint8Array, after: Uint8Array, width: number): GlyphChange | undefined {
  let c: GlyphChange | undefined;
  const n = Math.min(before.length, after.length);
  for (let i = 0; i < n; i++) {
    if (before[i] === after[i]) continue;
    const x = i % width;
    const y = (i - x) / width;
    if (!c) c = { pixels: 0, x0: x, y0: y, x1: x, y1: y };
    c.pixels++;
    if (x < c.x0) c.x0 = x;
    if (x > c.x1) c.x1 = x;
    if (y > c.y1) c.y1 = y;
  }
  return c;
}

class ByteReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(sock: Duplex) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.size += d.length;
      this.pump();
    });
    const fail = (e: Error): void => {
      this.failure ??= e;
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(this.failure);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('the VNC connection closed')));
  }

  private pump(): void {
    const w = this.waiting;
    if (!w || this.size < w.n) return;
    this.waiting = undefined;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    const rest = all.subarray(w.n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    w.resolve(all.subarray(0, w.n));
  }

  read(n: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { n, resolve, reject };
      this.pump();
    });
  }
}

export class RfbViewer {
  width = 0;
  height = 0;
  /** ServerInit's desktop name: QEMU sends `QEMU (VM name)`. */
  name = '';
  /** FramebufferUpdates received. */
  updates = 0;
  /** BGRX, as asked for in SetPixelFormat (little-endian, red at bit 16). */
  private fb = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private running: Promise<void> | undefined;

  private constructor(
    private readonly sock: Duplex,
    private readonly reader: ByteReader,
  ) {}

  /** Does the handshake on a connected socket (or any byte stream: a WebSocket's), asks for the whole screen and starts reading updates. */
  static async open(sock: Duplex & { setNoDelay?: (noDelay: boolean) => unknown }, timeoutMs = 15_000): Promise<RfbViewer> {
    sock.setNoDelay?.(true);
    const v = new RfbViewer(sock, new ByteReader(sock));
    const timer = setTimeout(() => sock.destroy(new Error(`RFB handshake not done in ${timeoutMs} ms`)), timeoutMs);
    try {
      await v.handshake();
      const first = v.nextUpdate(timeoutMs);
      v.running = v.run();
      v.running.catch(() => {});
      v.request(false);
      await first;
    } catch (e) {
      sock.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return v;
  }

  private async handshake(): Promise<void> {
    const version = (await this.reader.read(12)).toString('latin1');
    if (!version.startsWith('RFB ')) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
    this.sock.write('RFB 003.008\n');
    const n = (await this.reader.read(1)).readUInt8(0);
    if (n === 0) throw new Error('the server refused the connection');
    const types = [...(await this.reader.read(n))];
    if (!types.includes(1)) throw new Error(`the server wants security types ${types.join(',')}; this viewer speaks only None (1)`);
    this.sock.write(Buffer.from([1]));
    if ((await this.reader.read(4)).readUInt32BE(0) !== 0) throw new Error('security handshake failed');
    this.sock.write(Buffer.from([1])); // ClientInit: shared
    const init = await this.reader.read(24);
    this.resize(init.readUInt16BE(0), init.readUInt16BE(2));
    this.name = (await this.reader.read(init.readUInt32BE(20))).toString('utf8');
    // SetPixelFormat (s7.5.1): 32 bpp, depth 24, little-endian, true colour, 8 bits each at 16/8/0.
    const pf = Buffer.alloc(20);
    pf.set([32, 24, 0, 1], 4);
    pf.writeUInt16BE(255, 8);
    pf.writeUInt16BE(255, 10);
    pf.writeUInt16BE(255, 12);
    pf.set([16, 8, 0], 14);
    // SetEncodings (s7.5.2): Raw, and the DesktopSize pseudo-encoding (-223).
    const enc = Buffer.alloc(12);
    enc.writeUInt8(2, 0);
    enc.writeUInt16BE(2, 2);
    enc.writeInt32BE(0, 4);
    enc.writeInt32BE(-223, 8);
    this.sock.write(Buffer.concat([pf, enc]));
  }

  private resize(w: number, h: number): void {
    this.width = w;
    this.height = h;
    this.fb = Buffer.alloc(w * h * 4);
  }

  private request(incremental: boolean): void {
    const b = Buffer.alloc(10);
    b.writeUInt8(3, 0);
    b.writeUInt8(incremental ? 1 : 0, 1);
    b.writeUInt16BE(this.width, 6);
    b.writeUInt16BE(this.height, 8);
    this.sock.write(b);
  }

  /**
   * Presses one key and releases it `holdMs` later (KeyEvent, s7.5.4), as a keyboard would. Press and
   * release in one packet make QEMU's guest show the key about 50 ms later half of the time.
   */
  pressKey(keysym: number, holdMs = KEY_HOLD_MS): void {
    const event = (down: number): Buffer => {
      const b = Buffer.alloc(8);
      b.writeUInt8(4, 0);
      b.writeUInt8(down, 1);
      b.writeUInt32BE(keysym, 4);
      return b;
    };
    this.sock.write(event(1));
    setTimeout(() => {
      if (!this.sock.destroyed) this.sock.write(event(0));
    }, holdMs);
  }

  private async run(): Promise<void> {
    for (;;) {
      const type = (await this.reader.read(1)).readUInt8(0);
      if (type === 0) {
        const rects = (await this.reader.read(3)).readUInt16BE(1);
        for (let i = 0; i < rects; i++) {
          const h = await this.reader.read(12);
          const x = h.readUInt16BE(0);
          const y = h.readUInt16BE(2);
          const w = h.readUInt16BE(4);
          const rows = h.readUInt16BE(6);
          const encoding = h.readInt32BE(8);
          if (encoding === 0) {
            const px = await this.reader.read(w * rows * 4);
            for (let r = 0; r < rows; r++) px.copy(this.fb, ((y + r) * this.width + x) * 4, r * w * 4, (r + 1) * w * 4);
          } else if (encoding === -223) {
            this.resize(w, rows);
          } else {
            throw new Error(`unexpected encoding ${encoding}`);
          }
        }
        this.updates++;
        this.request(true);
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w();
      } else if (type === 1) {
        const h = await this.reader.read(5); // SetColourMapEntries
        await this.reader.read(h.readUInt16BE(3) * 6);
      } else if (type === 3) {
        const h = await this.reader.read(7); // ServerCutText
        await this.reader.read(h.readUInt32BE(3));
      } else if (type !== 2) {
        throw new Error(`unknown server message ${type}`);
      }
    }
  }

  /** Resolves after the next FramebufferUpdate has been applied. */
  nextUpdate(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no framebuffer update in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.running?.catch((e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }

  /** One byte per pixel, 1 where a glyph scanline is light (cursor scanlines left 0). */
  glyphs(): Uint8Array {
    const out = new Uint8Array(this.width * this.height);
    for (let y = 0; y < this.height; y++) {
      if (y % CELL_HEIGHT >= GLYPH_SCANLINES) continue;
      for (let x = 0; x < this.width; x++) {
        const i = (y * this.width + x) * 4;
        if (0.114 * this.fb[i]! + 0.587 * this.fb[i + 1]! + 0.299 * this.fb[i + 2]! > LIGHT_LUMA) out[y * this.width + x] = 1;
      }
    }
    return out;
  }

  close(): void {
    this.sock.destroy();
  }
}

/**
 * Presses `keysym` and times until an update shows a change of the glyphs: in ms from writing the KeyEvent
 * to the update's arrival (before the comparison). `isGlyph` is false when the first change was something
 * else (a banner line, a scroll): such a sample says nothing about the key.
 */
export async function timeKeyEcho(viewer: RfbViewer, keysym: number, timeoutMs = 10_000): Promise<{ ms: number; isGlyph: boolean; change: GlyphChange }> {
  const before = viewer.glyphs();
  const sentAt = performance.now();
  viewer.pressKey(keysym);
  for (;;) {
    await viewer.nextUpdate(timeoutMs);
    const at = performance.now();
    const change = glyphChange(before, viewer.glyphs(), viewer.width);
    if (change) return { ms: at - sentAt, isGlyph: isOneGlyph(change), change };
  }
}
