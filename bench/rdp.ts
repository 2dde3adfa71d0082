/**
 * Bench 7: RDP in the browser, in the libvirt lab: Debian's chromium in the
 * client's namespace, the lab's RDP guest (its port 3389 relayed to FreeRDP's
 * shadow server with NLA, test/lab/rdp-server.ts) two hops away.
 *
 * (a) First open: a fresh browser context (nothing cached) navigates to the
 *     RDP page (`vmdesk ui kvmhost`, token in the fragment), fills the form,
 *     and is timed from `page.goto` to the first remote frame on the canvas
 *     (the shadowed display's magenta half drawn).
 * (b) Cached open: the same in one context that opened the page before, so
 *     the 4 MB .wasm (immutable, content-hashed) comes from the cache.
 * (c) The peer, in the same run, alternating: `xfreerdp /auth-only` (TLS and
 *     NLA, no graphics) through a `vmdesk rdp -d` forward: the protocol part
 *     of an open with nothing of the browser.
 */
import { performance } from 'node:perf_hooks';
import type { Browser, BrowserContext } from 'playwright-core';
import { chromiumSkipReason, launchChromium } from '../test/browser/chromium.js';
import { startUi, type UiServer } from '../test/lab/console-page.js';
import { defineGuest, leasedIps } from '../test/lab/libvirt/host-probes.js';
import { libvirtDown, libvirtUp } from '../test/lab/libvirt/hypervisor.js';
import { GATEWAY } from '../test/lab/libvirt/domains.js';
import { NAMESPACES } from '../test/lab/netns.js';
import { pollUntil } from '../test/lab/poll.js';
import { rdpPath, sampleCanvas, submitLogin } from '../test/lab/rdp-page.js';
import { RDP_LAB_GUEST, RDP_PASSWORD, RDP_USER, SHADOW_PORT, startRdpServer, xfreerdpAuthOnly, type RdpServer } from '../test/lab/rdp-server.js';
import type { BenchLab } from './bench-lab.js';
import { compare, printComparison, type BenchResult } from './report.js';
import { fmt, max, median, min } from './stats.js';

type Tool = 'first' | 'cached' | 'xfreerdp';

async function timeOpen(context: BrowserContext, url: string): Promise<number> {
  const page = await context.newPage();
  try {
    const started = performance.now();
    await page.goto(url);
    const state = await submitLogin(page, RDP_USER, RDP_PASSWORD);
    if (state !== 'connected') throw new Error(`the RDP page ended ${state}: ${await page.textContent('#error')}`);
    await pollUntil(async () => ((await sampleCanvas(page, { x: 0.6, y: 0.2, w: 0.3, h: 0.6 })).pattern > 0 ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 10,
      what: 'the first remote frame',
    });
    return performance.now() - started;
  } finally {
    await page.close();
  }
}

export async function benchRdp(b: BenchLab, opts: { reps: number }): Promise<BenchResult> {
  const skip = chromiumSkipReason();
  if (skip) throw new Error(skip);
  await b.stopAll();
  const hv = await libvirtUp({ namespace: NAMESPACES.host, startGuests: false });
  let rdp: RdpServer | undefined;
  let ui: UiServer | undefined;
  let browser: Browser | undefined;
  const runs: { tool: Tool; rep: number; ms: number }[] = [];
  try {
    rdp = await startRdpServer({ netns: NAMESPACES.host, bindAddress: GATEWAY, port: SHADOW_PORT });
    await defineGuest(hv, RDP_LAB_GUEST);
    await pollUntil(async () => (await leasedIps(hv, RDP_LAB_GUEST.mac)).length > 0, { timeoutMs: 240_000, intervalMs: 1000, what: `${RDP_LAB_GUEST.name}'s lease` });
    ui = await startUi(b.lab, ['ui', '-F', b.sshConfigPath, 'kvmhost']);
    const fwd = await b.vmdeskOk(['rdp', '-d', '--json', '-F', b.sshConfigPath, `kvmhost/${RDP_LAB_GUEST.name}`]);
    const fwdPort = Number(/:(\d+)$/.exec((JSON.parse(fwd.stdout) as { address: string }).address)?.[1]);
    browser = await launchChromium({ netns: b.lab.namespaces.client });
    const url = `${ui.origin}${rdpPath(RDP_LAB_GUEST)}#token=${new URL(ui.url).hash.slice('#token='.length)}`;
    const warm = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await timeOpen(warm, url);
    const display = rdp.display;
    for (let rep = 0; rep < opts.reps; rep++) {
      const order: Tool[] = rep % 2 === 0 ? ['first', 'cached', 'xfreerdp'] : ['xfreerdp', 'cached', 'first'];
      for (const tool of order) {
        let ms: number;
        if (tool === 'xfreerdp') {
          const started = performance.now();
          if (!(await xfreerdpAuthOnly(b.lab.namespaces.client, `127.0.0.1:${fwdPort}`, RDP_USER, RDP_PASSWORD, display))) throw new Error('xfreerdp /auth-only failed');
          ms = performance.now() - started;
        } else if (tool === 'cached') {
          ms = await timeOpen(warm, url);
        } else {
          const fresh = await browser.newContext({ viewport: { width: 1280, height: 800 } });
          ms = await timeOpen(fresh, url).finally(() => fresh.close());
        }
        runs.push({ tool, rep, ms });
        console.log(`  ${tool.padEnd(8)} rep ${rep + 1}: ${fmt(ms)} ms`);
      }
    }
  } finally {
    await browser?.close().catch(() => {});
    await ui?.stop();
    await b.stopAll();
    await rdp?.stop();
    await libvirtDown({ namespace: NAMESPACES.host });
  }
  const ms = (t: Tool) => runs.filter((r) => r.tool === t).map((r) => r.ms);
  const peer = median(ms('xfreerdp'));
  const comparisons = [
    compare({ what: 'RDP page, cached open: navigation to first remote frame, median', unit: 'ms', vmdesk: median(ms('cached')), peer, peerName: 'xfreerdp /auth-only via vmdesk rdp -d', ratioIs: 'vmdesk/peer', ratioWord: 'x the time', target: { on: 'vmdesk', op: '<=', value: 1000 } }),
    compare({ what: 'RDP page, first open (nothing cached), median', unit: 'ms', vmdesk: median(ms('first')), peer, peerName: 'xfreerdp /auth-only via vmdesk rdp -d', ratioIs: 'vmdesk/peer', ratioWord: 'x the time', target: { on: 'vmdesk', op: '<=', value: 2000 } }),
  ];
  comparisons.forEach(printComparison);
  const spread = (t: Tool) => `${t} min ${fmt(min(ms(t)))} ms, max ${fmt(max(ms(t)))} ms`;
  const notes = [
    `${spread('first')}; ${spread('cached')}; ${spread('xfreerdp')}`,
    'the peer is the protocol part alone (TLS + NLA, no graphics, no browser): the page adds page load, the wasm (first open: 4.1 MB over loopback) and the first frame',
  ];
  for (const n of notes) console.log(`  note: ${n}`);
  return { name: 'rdp', title: 'RDP in the browser: navigation to first remote frame', comparisons, details: { ...opts, vm: RDP_LAB_GUEST.name, runs }, notes };
}
