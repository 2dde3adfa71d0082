/**
 * RDP in the browser against the real lab: `vmdesk ui kvmhost` run by the
 * client user, Debian's chromium in the client's namespace, IronRDP's web
 * client talking RDCleanPath to vmdesk, which reaches the guest through the
 * jump host by the guest's IP found by MAC. The RDP server is real
 * (FreeRDP's shadow server with NLA, test/lab/rdp-server.ts) on the KVM
 * host's bridge address; this file's own guest relays its port 3389 there.
 * The canvas must show the shadowed display's pattern, typed keys must reach
 * it (xev logs them), a wrong password must show an error and no canvas.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { chromiumSkipReason, launchChromium, saveShot } from '../browser/chromium.js';
import { labDown, labUp, type Lab } from './lab.js';
import { stopAll, vmdeskOk } from './cli-contract.js';
import { libvirtDown, libvirtUp, type Hypervisor } from './libvirt/hypervisor.js';
import { GATEWAY, LAB_UUID_PREFIX, type LabDomain } from './libvirt/domains.js';
import { defineGuest, leasedIps } from './libvirt/host-probes.js';
import { signIn, startUi, type UiServer } from './console-page.js';
import { pollUntil } from './poll.js';
import { PATTERN_RGB, RDP_PASSWORD, RDP_USER, startRdpServer, xfreerdpAuthOnly, type RdpServer } from './rdp-server.js';

const skip = chromiumSkipReason();
const SHADOW_PORT = 13389;
/** A guest of this file only: the lab's win2016 keeps its RDP-LAB banner (vms.test.ts checks it). */
const RDP_GUEST: LabDomain = {
  name: 'win2022',
  uuid: `${LAB_UUID_PREFIX}00000000da01`,
  mac: '52:54:00:6c:da:01',
  graphics: 'loopback',
  isRunning: true,
  hostname: 'win2022',
  rdpRelay: `${GATEWAY}:${SHADOW_PORT}`,
};

let lab: Lab;
let hv: Hypervisor;
let rdp: RdpServer;
let ui: UiServer;
let browser: Browser;
let page: Page;
const pageProblems: string[] = [];

before(async () => {
  if (skip) return;
  lab = await labUp();
  hv = await libvirtUp({ namespace: 'vmd-host', startGuests: false });
  rdp = await startRdpServer({ netns: hv.namespace, bindAddress: GATEWAY, port: SHADOW_PORT });
  await defineGuest(hv, RDP_GUEST);
  await pollUntil(async () => (await leasedIps(hv, RDP_GUEST.mac)).length > 0, { timeoutMs: 240_000, intervalMs: 1000, what: `${RDP_GUEST.name}'s DHCP lease` });
  ui = await startUi(lab, ['ui', 'kvmhost']);
  browser = await launchChromium({ netns: lab.namespaces.client });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) pageProblems.push(m.text());
  });
  page.on('pageerror', (e) => pageProblems.push(`uncaught: ${e.message}`));
  await signIn(page, ui.url);
}, { timeout: 600_000 });

after(async () => {
  if (skip) return;
  await browser?.close().catch(() => {});
  await ui?.stop();
  if (lab) await stopAll(lab);
  await rdp?.stop();
  await hv?.virsh(['destroy', '--domain', RDP_GUEST.uuid]).catch(() => {});
  await hv?.virsh(['undefine', '--domain', RDP_GUEST.uuid]).catch(() => {});
  await libvirtDown({ namespace: 'vmd-host' });
  await labDown();
}, { timeout: 120_000 });

/** Pixels of the RDP canvas in a rectangle (fractions of its size): how many are the pattern's colour, how many near-white. */
async function sampleCanvas(p: Page, rect: { x: number; y: number; w: number; h: number }): Promise<{ width: number; height: number; pattern: number; white: number; total: number }> {
  return p.evaluate(
    ({ r, rgb }) => {
      const canvas = document.getElementById('rdp-canvas') as HTMLCanvasElement;
      const ctx = canvas.getContext('2d');
      if (!ctx || canvas.width === 0) return { width: 0, height: 0, pattern: 0, white: 0, total: 0 };
      const x = Math.floor(r.x * canvas.width);
      const y = Math.floor(r.y * canvas.height);
      const w = Math.floor(r.w * canvas.width);
      const h = Math.floor(r.h * canvas.height);
      const d = ctx.getImageData(x, y, w, h).data;
      let pattern = 0;
      let white = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (Math.abs(d[i]! - rgb[0]) < 16 && Math.abs(d[i + 1]! - rgb[1]) < 16 && Math.abs(d[i + 2]! - rgb[2]) < 16) pattern++;
        if (d[i]! > 235 && d[i + 1]! > 235 && d[i + 2]! > 235) white++;
      }
      return { width: canvas.width, height: canvas.height, pattern, white, total: w * h };
    },
    { r: rect, rgb: [PATTERN_RGB[0], PATTERN_RGB[1], PATTERN_RGB[2]] as [number, number, number] },
  );
}

async function openRdpPage(vm: string): Promise<void> {
  await page.goto(`${ui.origin}/rdp?host=kvmhost&vm=${encodeURIComponent(vm)}`);
  await page.waitForSelector('#rdp-user');
}

async function submitLogin(user: string, password: string): Promise<string> {
  await page.fill('#rdp-user', user);
  await page.fill('#rdp-password', password);
  await page.click('#btn-connect');
  await page.waitForFunction(() => ['connected', 'failed', 'ended'].includes(document.body.dataset.state ?? ''), null, { timeout: 90_000 });
  return page.evaluate(() => document.body.dataset.state ?? '');
}

describe('RDP in the browser through the jump host (chromium, FreeRDP shadow server with NLA)', { skip }, () => {
  test('a real client (xfreerdp /auth-only) passes NLA through a `vmdesk rdp -d` forward, and fails with a wrong password', { timeout: 120_000 }, async () => {
    const r = await vmdeskOk(lab, ['rdp', '-d', '--json', `kvmhost/${RDP_GUEST.name}`]);
    const port = Number(/127\.0\.0\.1:(\d+)/.exec((JSON.parse(r.stdout) as { address: string }).address)?.[1]);
    assert.ok(port > 0, r.stdout);
    assert.equal(await xfreerdpAuthOnly(lab.namespaces.client, `127.0.0.1:${port}`, RDP_USER, RDP_PASSWORD, rdp.display), true, 'the right password');
    assert.equal(await xfreerdpAuthOnly(lab.namespaces.client, `127.0.0.1:${port}`, RDP_USER, 'not-the-password', rdp.display), false, 'a wrong password');
    await stopAll(lab);
  });

  test('a wrong password shows the error and no canvas', { timeout: 120_000 }, async () => {
    await openRdpPage(RDP_GUEST.name);
    assert.equal(await submitLogin(RDP_USER, 'not-the-password'), 'failed');
    const code = await page.getAttribute('#error', 'data-code');
    assert.match(code ?? '', /^RDP_(LOGON_FAILED|WRONG_PASSWORD)$/);
    assert.equal(await page.isVisible('#rdp-canvas'), false);
    assert.equal(await page.inputValue('#rdp-password'), '', 'the password field is cleared');
    await saveShot(page, 'lab-rdp-wrong-password');
  });

  test('logs in with the form, shows the shadowed display, and typed keys reach it', { timeout: 180_000 }, async () => {
    await openRdpPage(RDP_GUEST.name);
    assert.equal(await submitLogin(RDP_USER, RDP_PASSWORD), 'connected', (await page.textContent('#error')) ?? '');
    // The display: xev's white window on the left half, the magenta xmessage on the right half.
    const right = await pollUntil(
      async () => {
        const s = await sampleCanvas(page, { x: 0.6, y: 0.2, w: 0.3, h: 0.6 });
        return s.pattern > s.total * 0.9 ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the magenta half of the shadowed display on the canvas' },
    );
    const left = await sampleCanvas(page, { x: 0.1, y: 0.3, w: 0.3, h: 0.6 });
    assert.ok(left.white > left.total * 0.9, `the left half is xev's white window: ${left.white}/${left.total}`);
    assert.ok(right.width >= 640, `a desktop as wide as the stage: ${right.width}`);
    await saveShot(page, 'lab-rdp-browser');

    // Move the remote pointer into xev's window (X focus follows the pointer here), then type.
    const box = (await page.locator('#rdp-canvas').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.5);
    await page.mouse.click(box.x + box.width * 0.25, box.y + box.height * 0.5);
    await page.keyboard.type('vmdesk');
    const log = await pollUntil(
      async () => {
        const text = await rdp.keyLog();
        return ['v', 'm', 'd', 'e', 's', 'k'].every((k) => text.includes(`, ${k})`)) ? text : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 300, what: 'xev to log the typed keys' },
    );
    assert.match(log, /KeyPress event/);
    assert.deepEqual(pageProblems, []);
  });
});
