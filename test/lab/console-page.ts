/**
 * The browser side of the lab's console tests and benches: `vmdesk ui` run as
 * the client user, and a probe installed in every page that reads the
 * console canvas (vmdesk's `#screen canvas`, or noVNC's own page) as the lab
 * guests draw it: light VGA glyphs on black in 9x16 text cells
 * (test/lab/rfb-viewer.ts holds the geometry).
 *
 * The probe is plain JavaScript given to the page through DevTools
 * (`addInitScript`, `evaluate`), which the pages' Content-Security-Policy
 * does not govern; it changes nothing the page does. It notes when the
 * page's WebSocket opens and first speaks, and hears of every drawImage onto
 * a canvas (noVNC shows each frame that way), so a change is timed when
 * noVNC draws it and only the drawn rectangle is examined: scanning the
 * whole canvas takes ~15 ms here, which polling would steal from the page.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { CELL_HEIGHT, CELL_WIDTH, GLYPH_SCANLINES, LIGHT_LUMA, type GlyphChange } from './rfb-viewer.js';
import type { ClientProcess, Lab } from './lab.js';
import { PollAbortError, pollUntil } from './poll.js';

/** vmdesk's console page keeps the noVNC canvas here (web/console.html). */
export const VMDESK_CANVAS = '#screen canvas';
/** Debian's noVNC 1.3 `vnc.html` attaches its screen here. */
export const NOVNC_CANVAS = '#noVNC_container canvas';

export interface UiServer {
  process: ClientProcess;
  /** The URL vmdesk printed first: `http://127.0.0.1:PORT/...#token=...`. */
  url: string;
  origin: string;
  stop(): Promise<void>;
}

/** Starts `vmdesk ARGS` (ui, or vnc --browser; `--no-open` is added) as the client user and waits for the URL it prints first. */
export async function startUi(lab: Lab, args: readonly string[], timeoutMs = 60_000): Promise<UiServer> {
  const p = lab.spawnClient(['vmdesk', ...args, '--no-open']);
  let exited = false;
  void p.exited.then(() => (exited = true));
  try {
    const url = await pollUntil(
      () => {
        const first = /^(http:\/\/127\.0\.0\.1:\d+\/[^\s#]*#token=[A-Za-z0-9_-]+)\n/.exec(p.stdout());
        if (first) return first[1]!;
        if (exited || (p.stdout().includes('\n') && !first)) throw new PollAbortError(`vmdesk ${args.join(' ')} printed no URL first\n--- stdout\n${p.stdout()}--- stderr\n${p.stderr()}`);
        return undefined;
      },
      { timeoutMs, intervalMs: 50, what: `vmdesk ${args.join(' ')} to print its URL` },
    );
    return { process: p, url, origin: new URL(url).origin, stop: () => p.stop() };
  } catch (e) {
    await p.stop();
    throw e;
  }
}

/**
 * Opens the token URL: the page keeps the token in this tab's sessionStorage
 * and drops it from the address bar. Later pages of this origin opened in the
 * same `page` use it; a new page (tab) needs the token in its own link.
 */
export async function signIn(page: Page, url: string, timeoutMs = 30_000): Promise<void> {
  await page.goto(url);
  await page.waitForURL((u) => !u.hash.includes('token='), { timeout: timeoutMs });
}

/** The console page of a VM: named by UUID (the dashboard's identity), its name only for the title. */
export function consolePath(host: string, vm: { uuid: string; name: string }): string {
  return `/console?${new URLSearchParams({ host, uuid: vm.uuid, name: vm.name }).toString()}`;
}

/** The console page's state and attempt counter (web/console.ts sets both on <body>). */
export async function consoleState(page: Page): Promise<{ state: string; attempts: number; status: string }> {
  return page.evaluate(() => ({
    state: document.body.dataset.state ?? '',
    attempts: Number(document.body.dataset.attempts ?? 0),
    status: document.querySelector('#status')?.textContent ?? '',
  }));
}

export async function waitConsoleState(page: Page, states: readonly string[], timeoutMs: number): Promise<string> {
  try {
    await page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout: timeoutMs, polling: 50 });
  } catch (e) {
    const now = await consoleState(page).catch(() => undefined);
    throw new Error(`the console page did not reach ${states.join('|')} in ${timeoutMs} ms; now ${JSON.stringify(now)}`, { cause: e });
  }
  return (await consoleState(page)).state;
}

// ---- reading the canvas ----

const PROBE = `(() => {
  if (window.__vmdProbe) return;
  const CELL = ${CELL_HEIGHT}, GLYPH = ${GLYPH_SCANLINES}, LIGHT = ${LIGHT_LUMA};

  // WebSocket milestones. Native sockets are handed out (noVNC checks the prototype's own properties).
  const timeline = { wsCreated: null, wsOpen: null, firstMessage: null };
  const NativeWebSocket = window.WebSocket;
  const ProbedWebSocket = function (...args) {
    const ws = new NativeWebSocket(...args);
    timeline.wsCreated ??= performance.now();
    ws.addEventListener('open', () => { timeline.wsOpen ??= performance.now(); });
    ws.addEventListener('message', () => { timeline.firstMessage ??= performance.now(); });
    return ws;
  };
  ProbedWebSocket.prototype = NativeWebSocket.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) ProbedWebSocket[k] = NativeWebSocket[k];
  window.WebSocket = ProbedWebSocket;

  // noVNC (1.3 and 1.7) shows a frame by drawImage from its back buffer onto the visible canvas:
  // watchers hear of every such draw with its time and rectangle, and look only there.
  const watchers = new Set();
  const drawn = (canvas, x, y, w, h) => {
    if (watchers.size === 0) return;
    const t = performance.now();
    for (const f of [...watchers]) f(canvas, { x: Math.max(0, Math.floor(x)), y: Math.max(0, Math.floor(y)), w: Math.ceil(w), h: Math.ceil(h) }, t);
  };
  const ctxProto = CanvasRenderingContext2D.prototype;
  const nativeDrawImage = ctxProto.drawImage;
  ctxProto.drawImage = function (img, ...a) {
    const r = nativeDrawImage.call(this, img, ...a);
    if (a.length >= 8) drawn(this.canvas, a[4], a[5], a[6], a[7]);
    else if (a.length >= 4) drawn(this.canvas, a[0], a[1], a[2], a[3]);
    else drawn(this.canvas, a[0], a[1], img.width, img.height);
    return r;
  };
  const nativePutImageData = ctxProto.putImageData;
  ctxProto.putImageData = function (data, dx, dy, ...a) {
    const r = nativePutImageData.call(this, data, dx, dy, ...a);
    drawn(this.canvas, dx, dy, data.width, data.height);
    return r;
  };

  // Light glyph pixels (cursor scanlines skipped) of a rectangle, with light and dark counts over all of it.
  const glyphs = (c, x, y, w, h) => {
    w = Math.min(w, c.width - x); h = Math.min(h, c.height - y);
    if (w <= 0 || h <= 0) return { x, y, w: 0, h: 0, g: new Uint8Array(0), light: 0, dark: 0 };
    const d = c.getContext('2d').getImageData(x, y, w, h).data;
    const g = new Uint8Array(w * h);
    let light = 0, dark = 0;
    for (let j = 0; j < h; j++) {
      const isGlyphLine = (y + j) % CELL < GLYPH;
      for (let i = 0, k = j * w * 4; i < w; i++, k += 4) {
        const luma = 0.299 * d[k] + 0.587 * d[k + 1] + 0.114 * d[k + 2];
        if (luma > LIGHT) { light++; if (isGlyphLine) g[j * w + i] = 1; } else if (luma < 60) dark++;
      }
    }
    return { x, y, w, h, g, light, dark };
  };
  const whole = (sel) => {
    const c = document.querySelector(sel);
    return c && c.width > 0 && c.height > 0 ? { c, s: glyphs(c, 0, 0, c.width, c.height) } : null;
  };
  // Where the rectangle r differs from the whole-canvas bitmap base.
  const diff = (base, r) => {
    let c = null;
    for (let j = 0; j < r.h; j++) {
      for (let i = 0; i < r.w; i++) {
        const x = r.x + i, y = r.y + j;
        if (base.g[y * base.w + x] === r.g[j * r.w + i]) continue;
        if (c === null) c = { pixels: 0, x0: x, y0: y, x1: x, y1: y };
        c.pixels++;
        if (x < c.x0) c.x0 = x;
        if (x > c.x1) c.x1 = x;
        if (y > c.y1) c.y1 = y;
      }
    }
    return c;
  };
  const watch = (onDraw, timeoutMs) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => { watchers.delete(f); reject(new Error('timed out after ' + timeoutMs + ' ms')); }, timeoutMs);
    const f = (canvas, rect, t) => {
      let v;
      try { v = onDraw(canvas, rect, t); } catch (e) { watchers.delete(f); clearTimeout(timer); reject(e); return; }
      if (v !== undefined) { watchers.delete(f); clearTimeout(timer); resolve(v); }
    };
    watchers.add(f);
  });

  let keyAt = null;
  addEventListener('keydown', () => { if (keyAt === null) keyAt = performance.now(); }, true);
  let armed = null;
  const isPainted = (s, minLight) => s.light >= minLight && s.dark > s.w * s.h / 2;
  window.__vmdProbe = {
    // Milestones of this page in ms since navigation start: HTML received, DOM ready, the (first) WebSocket.
    timeline() {
      const nav = performance.getEntriesByType('navigation')[0];
      return { responseEnd: nav ? nav.responseEnd : null, domContentLoaded: nav ? nav.domContentLoadedEventEnd : null, ...timeline };
    },
    bits(sel) {
      const w = whole(sel);
      if (w === null) return null;
      const s = w.s;
      const packed = new Uint8Array(Math.ceil(s.g.length / 8));
      for (let i = 0; i < s.g.length; i++) if (s.g[i]) packed[i >> 3] |= 1 << (i & 7);
      let bin = '';
      for (let i = 0; i < packed.length; i += 8192) bin += String.fromCharCode.apply(null, packed.subarray(i, i + 8192));
      return { width: s.w, height: s.h, light: s.light, dark: s.dark, bits: btoa(bin) };
    },
    // The time of the draw after which the canvas first showed light text on a mostly dark screen.
    painted(sel, minLight, timeoutMs) {
      const now = whole(sel);
      if (now !== null && isPainted(now.s, minLight)) return Promise.resolve(performance.now());
      return watch((canvas, _r, t) => {
        if (canvas !== document.querySelector(sel)) return undefined;
        return isPainted(glyphs(canvas, 0, 0, canvas.width, canvas.height), minLight) ? t : undefined;
      }, timeoutMs);
    },
    // Remembers the glyphs now and watches the draws that follow (set up before the key is sent).
    arm(sel, timeoutMs) {
      const base = whole(sel);
      if (base === null) throw new Error('no canvas ' + sel);
      keyAt = null;
      armed = watch((canvas, rect, t) => {
        if (canvas !== base.c) return undefined;
        const c = diff(base.s, glyphs(canvas, rect.x, rect.y, rect.w, rect.h));
        return c === null ? undefined : { changedAt: t, keyAt, change: c };
      }, timeoutMs);
      armed.catch(() => {});
    },
    changed() {
      if (armed === null) throw new Error('arm() first');
      const p = armed;
      armed = null;
      return p;
    },
  };
})();`;

/** Installs the canvas probe in every page of `context` (before the pages' own scripts). */
export async function installProbe(context: BrowserContext): Promise<void> {
  await context.addInitScript({ content: PROBE });
}

export interface CanvasBits {
  width: number;
  height: number;
  /** All light pixels (any scanline), and dark ones. */
  light: number;
  dark: number;
  /** One byte per pixel: 1 where a glyph scanline is light (see rfb-viewer.ts). */
  glyphs: Uint8Array;
}

/** The console canvas's glyph bitmap, or undefined while there is no canvas with pixels. */
export async function readCanvas(page: Page, selector = VMDESK_CANVAS): Promise<CanvasBits | undefined> {
  const r = (await page.evaluate(`window.__vmdProbe.bits(${JSON.stringify(selector)})`)) as { width: number; height: number; light: number; dark: number; bits: string } | null;
  if (r === null) return undefined;
  const packed = Buffer.from(r.bits, 'base64');
  const glyphs = new Uint8Array(r.width * r.height);
  for (let i = 0; i < glyphs.length; i++) glyphs[i] = (packed[i >> 3]! >> (i & 7)) & 1;
  return { width: r.width, height: r.height, light: r.light, dark: r.dark, glyphs };
}

/** Resolves (with the page's performance.now()) once the canvas shows at least `minLight` light pixels on a mostly dark screen. */
export async function waitPainted(page: Page, selector: string, minLight: number, timeoutMs: number): Promise<number> {
  return (await page.evaluate(`window.__vmdProbe.painted(${JSON.stringify(selector)}, ${minLight}, ${timeoutMs})`)) as number;
}

/** Milestones of the page in ms since its navigation started (null: not reached). */
export interface PageTimeline {
  responseEnd: number | null;
  domContentLoaded: number | null;
  wsCreated: number | null;
  wsOpen: number | null;
  firstMessage: number | null;
}

export async function pageTimeline(page: Page): Promise<PageTimeline> {
  return (await page.evaluate('window.__vmdProbe.timeline()')) as PageTimeline;
}

/** Remembers the canvas as it is now and starts watching it; `waitChanged` then reports the first change of its glyphs. */
export async function armChange(page: Page, selector = VMDESK_CANVAS, timeoutMs = 10_000): Promise<void> {
  await page.evaluate(`window.__vmdProbe.arm(${JSON.stringify(selector)}, ${timeoutMs})`);
}

/** The first glyph change since armChange, timed in the page: `keyAt` is the first keydown since then (null if none). */
export async function waitChanged(page: Page): Promise<{ changedAt: number; keyAt: number | null; change: GlyphChange }> {
  return (await page.evaluate('window.__vmdProbe.changed()')) as { changedAt: number; keyAt: number | null; change: GlyphChange };
}

// ---- what a glyph bitmap says ----

export interface TextRow {
  row: number;
  /** Light glyph pixels in the row. */
  light: number;
  /** One past the rightmost light pixel (0 for an empty row). */
  extent: number;
  /** FNV-1a of the row's glyph bits: equal text draws equal rows. */
  hash: string;
}

/** Splits a glyph bitmap into VGA text rows. */
export function textRows(glyphs: Uint8Array, width: number, height: number): TextRow[] {
  const rows: TextRow[] = [];
  for (let row = 0; row * CELL_HEIGHT < height; row++) {
    let light = 0;
    let extent = 0;
    let h = 2166136261;
    for (let y = row * CELL_HEIGHT; y < Math.min(height, (row + 1) * CELL_HEIGHT); y++) {
      for (let x = 0; x < width; x++) {
        const v = glyphs[y * width + x]!;
        h = Math.imul(h ^ v, 16777619) >>> 0;
        if (v) {
          light++;
          extent = Math.max(extent, x + 1);
        }
      }
    }
    rows.push({ row, light, extent, hash: h.toString(16) });
  }
  return rows;
}

/** The text row drawn most often (the guest's banner, printed every 3 s), or undefined on an empty screen. */
export function commonRow(rows: readonly TextRow[]): TextRow | undefined {
  const counts = new Map<string, { row: TextRow; n: number }>();
  for (const r of rows) {
    if (r.light === 0) continue;
    const c = counts.get(r.hash) ?? { row: r, n: 0 };
    c.n++;
    counts.set(r.hash, c);
  }
  return [...counts.values()].sort((a, b) => b.n - a.n)[0]?.row;
}

/** The rightmost light pixel of the whole screen, in text cells. */
export function widestLineCells(rows: readonly TextRow[]): number {
  return Math.max(0, ...rows.map((r) => r.extent)) / CELL_WIDTH;
}
