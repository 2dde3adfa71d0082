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
import { GATEWAY } from './libvirt/domains.js';
import { defineGuest, leasedIps } from './libvirt/host-probes.js';
import { signIn, startUi, type UiServer } from './console-page.js';
import { pollUntil } from './poll.js';
import { rdpPath, sampleCanvas, submitLogin } from './rdp-page.js';
import { RDP_LAB_GUEST, RDP_PASSWORD, RDP_USER, SHADOW_PORT, startRdpServer, xfreerdpAuthOnly, type RdpServer } from './rdp-server.js';

const skip = chromiumSkipReason();
const RDP_GUEST = RDP_LAB_GUEST;

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
    await page.goto(`${ui.origin}${rdpPath(RDP_GUEST)}`);
    assert.equal(await submitLogin(page, RDP_USER, 'not-the-password'), 'failed');
    const code = await page.getAttribute('#error', 'data-code');
    assert.match(code ?? '', /^RDP_(LOGON_FAILED|WRONG_PASSWORD)$/);
    assert.equal(await page.isVisible('#rdp-canvas'), false);
    assert.equal(await page.inputValue('#rdp-password'), '', 'the password field is cleared');
    await saveShot(page, 'lab-rdp-wrong-password');
  });

  test('logs in with the form, shows the shadowed display, and typed keys reach it', { timeout: 180_000 }, async () => {
    await page.goto(`${ui.origin}${rdpPath(RDP_GUEST)}`);
    assert.equal(await submitLogin(page, RDP_USER, RDP_PASSWORD), 'connected', (await page.textContent('#error')) ?? '');
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
