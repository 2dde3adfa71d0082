/**
 * Bench 6: the browser console, in the libvirt lab, with Debian's chromium in
 * the client's namespace and win2016's VNC console two hops away.
 *
 * (a) Opening a console: from `page.goto` of vmdesk's console page
 *     (`vmdesk ui kvmhost`, the token in the link's fragment) to the guest's screen
 *     painted on the canvas (light banner text on the dark VGA screen).
 * (b) The usual alternative, in the same run, alternating with (a): Debian's
 *     `websockify` on the hypervisor serving Debian's noVNC 1.3 and bridging
 *     to the same VNC port, reached through OpenSSH `ssh -N -L` with ProxyJump
 *     (already connected, like vmdesk's chain); page `vnc.html?autoconnect=1`.
 *     Every navigation gets a fresh browser context for both (a first visit:
 *     nothing cached; vmdesk sends `no-store` anyway).
 * (c) Keystroke to echo: from the keydown reaching vmdesk's console page to
 *     the echoed glyph drawn on its canvas, against the same key sent by a
 *     minimal RFB client in Node (test/lab/rfb-key-client.ts, inside
 *     vmd-client too) through a `vmdesk vnc -d` forward, timed from writing
 *     the KeyEvent to the update that shows the glyph. Samples alternate
 *     between the two; both stay connected throughout, so QEMU serves two
 *     clients during every sample. Samples where something else changed the
 *     screen first (the guest's banner every 3 s) are taken again.
 *
 * (b) needs Debian's `websockify` and `novnc` (apt-get install websockify
 * novnc; .ci/run does not install them): without them it is reported as not
 * measured and the rest still runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumSkipReason, launchChromium } from '../test/browser/chromium.js';
import {
  NOVNC_CANVAS,
  VMDESK_CANVAS,
  armChange,
  consolePath,
  installProbe,
  pageTimeline,
  startUi,
  waitChanged,
  waitConsoleState,
  waitPainted,
  type PageTimeline,
  type UiServer,
} from '../test/lab/console-page.js';
import { CHECKOUT } from '../test/lab/lab.js';
import { LAB_DOMAINS } from '../test/lab/libvirt/domains.js';
import { killGroup, spawnDetached } from '../test/lab/exec.js';
import { libvirtDown, libvirtUp, type Hypervisor } from '../test/lab/libvirt/hypervisor.js';
import { NAMESPACES } from '../test/lab/netns.js';
import { PollAbortError, pollUntil } from '../test/lab/poll.js';
import { KEY_HOLD_MS, isOneGlyph, type GlyphChange } from '../test/lab/rfb-viewer.js';
import type { BenchLab } from './bench-lab.js';
import { openOpenSshForward, type Forward } from './forwards.js';
import { compare, printComparison, type BenchResult, type Comparison } from './report.js';
import { fmt, max, median, min } from './stats.js';

const WEBSOCKIFY = '/usr/bin/websockify';
const NOVNC_DIR = '/usr/share/novnc';
/** websockify on the KVM host's loopback (the lab's services use 5900-6000 and 7000; QEMU's autoports start after 6000). */
const WEBSOCKIFY_PORT = 6080;
/** The client's end of `ssh -L` to websockify. */
const NOVNC_LOCAL_PORT = 7780;
const VM = 'win2016';
/** Light pixels of a few banner lines: the guest's screen is drawn, not an empty canvas. */
const MIN_LIGHT = 2000;
/** 'm': no descender (the cursor's scanlines are ignored), many pixels. */
const KEY = 'm';
const KEYSYM_M = 0x6d;

type OpenTool = 'vmdesk' | 'novnc';
type KeyTool = 'browser' | 'rfb';

interface OpenRun {
  tool: OpenTool;
  rep: number;
  ms: number;
  /** In the page's clock (ms since navigation start): milestones, and when the screen was seen painted. */
  timeline: PageTimeline & { painted: number };
}

interface KeyRun {
  tool: KeyTool;
  rep: number;
  ms: number;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** Why the websockify + noVNC peer cannot run here, or undefined when it can. */
async function peerMissing(): Promise<string | undefined> {
  const missing = [];
  if (!(await exists(WEBSOCKIFY))) missing.push(WEBSOCKIFY);
  if (!(await exists(`${NOVNC_DIR}/vnc.html`))) missing.push(`${NOVNC_DIR}/vnc.html`);
  return missing.length > 0 ? `${missing.join(' and ')} missing: apt-get install websockify novnc (Debian's packages; .ci/run does not install them)` : undefined;
}

/** win2016's VNC TCP port on the KVM host's loopback (autoport: it moves on every start). */
async function vncPort(hv: Hypervisor): Promise<number> {
  const r = await hv.virsh(['vncdisplay', '--domain', VM]);
  const m = /:(\d+)\s*$/.exec(r.stdout.trim());
  if (r.code !== 0 || !m) throw new Error(`virsh vncdisplay ${VM}: ${r.stdout}${r.stderr}`);
  return 5900 + Number(m[1]);
}

async function startWebsockify(hv: Hypervisor, target: number): Promise<ChildProcess> {
  const child = spawnDetached(['ip', 'netns', 'exec', NAMESPACES.host, WEBSOCKIFY, '--web', NOVNC_DIR, `127.0.0.1:${WEBSOCKIFY_PORT}`, `127.0.0.1:${target}`], { stdout: 'pipe', stderr: 'pipe' });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  await pollUntil(
    async () => {
      if (child.exitCode !== null) throw new PollAbortError(`websockify exited: ${out}`);
      const r = await hv.run(['ss', '-Hltn', `sport = :${WEBSOCKIFY_PORT}`]);
      return r.stdout.includes(`:${WEBSOCKIFY_PORT}`);
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `websockify on the KVM host's 127.0.0.1:${WEBSOCKIFY_PORT}` },
  );
  return child;
}

/** A fresh context (nothing cached, nothing stored) with the probe. */
async function freshPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await installProbe(context);
  return { context, page: await context.newPage() };
}

/** Navigation to the guest's screen painted, in ms (wall clock of this process), with the page's own milestones. */
async function timeOpen(browser: Browser, url: string, selector: string): Promise<Omit<OpenRun, 'tool' | 'rep'>> {
  const { context, page } = await freshPage(browser);
  try {
    const started = performance.now();
    await page.goto(url, { waitUntil: 'commit', timeout: 30_000 });
    const painted = await waitPainted(page, selector, MIN_LIGHT, 30_000);
    const ms = performance.now() - started;
    return { ms, timeline: { ...(await pageTimeline(page)), painted } };
  } finally {
    await context.close();
  }
}

/** One keystroke in the browser: keydown to the glyph on the canvas, timed in the page; undefined when something else changed the screen first. */
async function keyInBrowser(page: Page): Promise<{ ms: number; change: GlyphChange } | undefined> {
  await armChange(page, VMDESK_CANVAS, 10_000);
  // Held like the Node client holds it (KEY_HOLD_MS): the echo comes on the press.
  await page.keyboard.down(KEY);
  await sleep(KEY_HOLD_MS);
  await page.keyboard.up(KEY);
  const r = await waitChanged(page);
  if (r.keyAt === null) throw new Error('the key never reached the page');
  if (r.changedAt < r.keyAt || !isOneGlyph(r.change)) return undefined;
  return { ms: r.changedAt - r.keyAt, change: r.change };
}

/** test/lab/rfb-key-client.ts inside vmd-client: the Node viewer, pressing a key whenever asked. */
class KeyClient {
  private lines: string[] = [];
  private wake: (() => void) | undefined;
  private err = '';

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      this.wake?.();
    });
    child.stderr?.on('data', (b: Buffer) => (this.err += b.toString()));
    child.once('exit', () => this.wake?.());
  }

  static async start(port: number): Promise<KeyClient> {
    const child = spawn('ip', ['netns', 'exec', NAMESPACES.client, process.execPath, '--import', 'tsx', join(CHECKOUT, 'test', 'lab', 'rfb-key-client.ts'), String(port), String(KEYSYM_M)], {
      cwd: CHECKOUT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const c = new KeyClient(child);
    const hello = (await c.next(30_000)) as { ready?: boolean; name?: string };
    if (hello.name !== `QEMU (${VM})`) throw new Error(`the Node viewer reached ${JSON.stringify(hello)}, not ${VM}`);
    return c;
  }

  private async next(timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.child.exitCode !== null) throw new Error(`rfb-key-client exited ${this.child.exitCode}: ${this.err}`);
      if (Date.now() > deadline) throw new Error(`rfb-key-client said nothing in ${timeoutMs} ms: ${this.err}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return JSON.parse(this.lines.shift()!);
  }

  /** One keystroke: KeyEvent written to the update that shows the glyph, timed in the client; undefined when something else changed first. */
  async press(): Promise<{ ms: number; change: GlyphChange } | undefined> {
    this.child.stdin!.write('key\n');
    const r = (await this.next(15_000)) as { ms?: number; isGlyph?: boolean; change?: GlyphChange; error?: string };
    if (r.error !== undefined || r.ms === undefined || r.change === undefined) throw new Error(`rfb-key-client: ${r.error ?? JSON.stringify(r)}`);
    return r.isGlyph ? { ms: r.ms, change: r.change } : undefined;
  }

  stop(): void {
    this.child.stdin?.end('quit\n');
    setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
  }
}

const MILESTONES = ['responseEnd', 'domContentLoaded', 'wsCreated', 'wsOpen', 'firstMessage', 'painted'] as const;

function describeTimeline(t: OpenRun['timeline']): string {
  const words: Record<(typeof MILESTONES)[number], string> = { responseEnd: 'html', domContentLoaded: 'dom ready', wsCreated: 'ws created', wsOpen: 'ws open', firstMessage: 'first rfb byte', painted: 'painted' };
  return MILESTONES.map((k) => `${words[k]} ${t[k] === null ? '-' : fmt(t[k])}`).join(', ');
}

function medianTimeline(ts: readonly OpenRun['timeline'][]): OpenRun['timeline'] {
  const m = (k: (typeof MILESTONES)[number]) => {
    const v = ts.map((t) => t[k]).filter((x): x is number => x !== null);
    return v.length > 0 ? median(v) : null;
  };
  return { responseEnd: m('responseEnd'), domContentLoaded: m('domContentLoaded'), wsCreated: m('wsCreated'), wsOpen: m('wsOpen'), firstMessage: m('firstMessage'), painted: m('painted') ?? Number.NaN };
}

export async function benchConsole(b: BenchLab, opts: { reps: number; keyReps: number }): Promise<BenchResult> {
  const noBrowser = chromiumSkipReason();
  if (noBrowser) throw new Error(`the console bench needs chromium: ${noBrowser}`);
  const whyNoPeer = await peerMissing();
  const notes: string[] = [];
  if (whyNoPeer) {
    notes.push(`(b) not measured: ${whyNoPeer}`);
    console.log(`  (b) websockify + noVNC not measured: ${whyNoPeer}`);
  }
  await b.stopAll();
  const hv = await libvirtUp({ namespace: NAMESPACES.host });
  let ui: UiServer | undefined;
  let browser: Browser | undefined;
  let websockify: ChildProcess | undefined;
  let sshForward: Forward | undefined;
  let keyClient: KeyClient | undefined;
  const opens: OpenRun[] = [];
  const keys: KeyRun[] = [];
  const discarded = { browser: 0, rfb: 0 };
  try {
    const port = await vncPort(hv);
    ui = await startUi(b.lab, ['ui', '-F', b.sshConfigPath, 'kvmhost']);
    browser = await launchChromium({ netns: NAMESPACES.client });
    // A fresh tab has no stored token: the console link carries it in its fragment, as the dashboard's links do.
    const vmdeskUrl = `${ui.origin}${consolePath('kvmhost', LAB_DOMAINS.find((d) => d.name === VM)!)}${new URL(ui.url).hash}`;

    let novncUrl: string | undefined;
    if (!whyNoPeer) {
      websockify = await startWebsockify(hv, port);
      sshForward = await openOpenSshForward(b, NOVNC_LOCAL_PORT, WEBSOCKIFY_PORT);
      novncUrl = `http://127.0.0.1:${NOVNC_LOCAL_PORT}/vnc.html?autoconnect=1&host=127.0.0.1&port=${NOVNC_LOCAL_PORT}&path=websockify`;
    }
    const tools: { tool: OpenTool; url: string; selector: string }[] = [
      { tool: 'vmdesk', url: vmdeskUrl, selector: VMDESK_CANVAS },
      ...(novncUrl ? [{ tool: 'novnc' as const, url: novncUrl, selector: NOVNC_CANVAS }] : []),
    ];

    // (a) and (b): one untimed open each (vmdesk's chain to kvmhost, websockify's first request), then alternating.
    for (const t of tools) await timeOpen(browser, t.url, t.selector);
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const t of rep % 2 === 0 ? tools : [...tools].reverse()) {
        const r = await timeOpen(browser, t.url, t.selector);
        opens.push({ tool: t.tool, rep, ...r });
        console.log(`  open ${t.tool.padEnd(6)} rep ${rep + 1}: ${fmt(r.ms)} ms (${describeTimeline(r.timeline)})`);
      }
    }

    // (c): both clients connected to win2016 for the whole series.
    const { page } = await freshPage(browser);
    await page.goto(vmdeskUrl);
    await waitConsoleState(page, ['connected'], 30_000);
    await waitPainted(page, VMDESK_CANVAS, MIN_LIGHT, 30_000);
    await page.locator(VMDESK_CANVAS).click();
    const fwd = await b.vmdeskOk(['vnc', '-d', '--json', '-F', b.sshConfigPath, `kvmhost/${VM}`]);
    const fwdPort = (JSON.parse(fwd.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
    keyClient = await KeyClient.start(fwdPort);
    await sleep(1000);
    const kc = keyClient;
    for (let rep = 0; rep < opts.keyReps; rep++) {
      for (const tool of rep % 2 === 0 ? (['browser', 'rfb'] as const) : (['rfb', 'browser'] as const)) {
        for (;;) {
          if (discarded.browser + discarded.rfb > opts.keyReps * 3) throw new Error(`too many keystroke samples disturbed by other screen changes (${JSON.stringify(discarded)})`);
          // Off the beat of QEMU's refresh timer and away from the last echo.
          await sleep(200 + Math.random() * 200);
          const r = tool === 'browser' ? await keyInBrowser(page) : await kc.press();
          if (r === undefined) {
            discarded[tool]++;
            continue;
          }
          keys.push({ tool, rep, ms: r.ms });
          console.log(`  key ${tool.padEnd(7)} rep ${rep + 1}: ${fmt(r.ms)} ms`);
          break;
        }
      }
    }
  } finally {
    keyClient?.stop();
    await browser?.close().catch(() => {});
    await ui?.stop();
    await sshForward?.stop();
    killGroup(websockify?.pid, 'SIGTERM');
    await b.stopAll();
    await libvirtDown({ namespace: NAMESPACES.host });
  }

  const openMs = (tool: OpenTool) => opens.filter((r) => r.tool === tool).map((r) => r.ms);
  const keyMs = (tool: KeyTool) => keys.filter((r) => r.tool === tool).map((r) => r.ms);
  const pairsOf = <R extends { tool: string; rep: number; ms: number }>(runs: readonly R[], a: string, p: string): [number, number][] =>
    runs.filter((r) => r.tool === a).flatMap((r) => {
      const peer = runs.find((q) => q.tool === p && q.rep === r.rep);
      return peer ? [[r.ms, peer.ms] as [number, number]] : [];
    });
  const comparisons: Comparison[] = [];
  const vmdeskOpen = median(openMs('vmdesk'));
  if (openMs('novnc').length > 0) {
    comparisons.push(
      compare({
        what: 'console open: navigation to guest screen painted, median',
        unit: 'ms',
        vmdesk: vmdeskOpen,
        peer: median(openMs('novnc')),
        peerName: 'websockify + noVNC 1.3 on the host via ssh -L (ProxyJump)',
        ratioIs: 'peer/vmdesk',
        ratioWord: 'x faster',
        target: { on: 'ratio', op: '>=', value: 2 },
        pairs: pairsOf(opens, 'vmdesk', 'novnc'),
      }),
    );
  }
  comparisons.push(
    compare({
      what: 'console open, vmdesk alone, median',
      unit: 'ms',
      vmdesk: vmdeskOpen,
      peer: openMs('novnc').length > 0 ? median(openMs('novnc')) : Number.NaN,
      peerName: openMs('novnc').length > 0 ? 'websockify + noVNC 1.3 via ssh -L' : 'websockify + noVNC (not measured)',
      ratioIs: 'peer/vmdesk',
      ratioWord: 'x faster',
      target: { on: 'vmdesk', op: '<=', value: 600 },
    }),
    compare({
      what: 'keystroke to echo on screen, median',
      unit: 'ms',
      vmdesk: median(keyMs('browser')),
      peer: median(keyMs('rfb')),
      peerName: 'Node RFB client on a vmdesk vnc -d forward',
      ratioIs: 'vmdesk/peer',
      ratioWord: 'x the latency',
      target: { on: 'ratio', op: '<=', value: 1.1 },
      pairs: pairsOf(keys, 'browser', 'rfb'),
    }),
  );
  comparisons.forEach(printComparison);
  const spread = (label: string, ms: number[]) => `${label} min ${fmt(min(ms))} ms, max ${fmt(max(ms))} ms`;
  notes.push(
    `open: ${spread('vmdesk', openMs('vmdesk'))}${openMs('novnc').length > 0 ? `; ${spread('noVNC', openMs('novnc'))}` : ''}; fresh browser context per open (cold cache for both)`,
    `keys: ${spread('browser', keyMs('browser'))}; ${spread('rfb', keyMs('rfb'))}; discarded (another screen change came first): ${JSON.stringify(discarded)}`,
    "keys: both latencies are mostly QEMU's: its VNC server looks for screen changes on a timer (30 ms, stretching by 50 ms per idle tick up to 3 s; the guest's blinking cursor keeps it short), so a sample waits for the next tick; medians of 20 move by tens of ms from that alone",
    `keys: the browser is timed from the keydown event in the page (input dispatch before it is not counted), the Node client from writing the KeyEvent; both hold the key ${KEY_HOLD_MS} ms (press and release in one packet make QEMU's guest echo ~50 ms late half of the time); both run inside vmd-client with TCP_NODELAY sockets`,
    ...(['vmdesk', 'novnc'] as const)
      .filter((tool) => opens.some((r) => r.tool === tool))
      .map((tool) => `open ${tool}, page milestones (median ms since navigation start): ${describeTimeline(medianTimeline(opens.filter((r) => r.tool === tool).map((r) => r.timeline)))}`),
  );
  for (const n of notes.slice(whyNoPeer ? 1 : 0)) console.log(`  note: ${n}`);
  return {
    name: 'console',
    title: 'browser console: open to screen painted, and keystroke to echo',
    comparisons,
    details: { ...opts, vm: VM, opens, keys, discarded },
    notes,
  };
}
