/**
 * The browser console against the real lab: `vmdesk ui kvmhost` run by the
 * client user, Debian's chromium in the client's namespace, consoles of real
 * QEMU guests reached through the jump host. The tests look at pixels: each
 * guest prints `VMDESK-LAB GUEST <name> IP <ip>` every 3 s on its VGA console
 * and echoes typed keys (test/lab/libvirt/guest-image.ts), so the canvas
 * tells which guest answered and whether keys arrived.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumSkipReason, launchChromium, saveShot } from '../browser/chromium.js';
import { labDown, labUp, type Lab } from './lab.js';
import { stopAll, vmdeskOk } from './cli-contract.js';
import { libvirtDown, libvirtUp, type Hypervisor } from './libvirt/hypervisor.js';
import { LAB_DOMAINS, VNC_PASSWORD } from './libvirt/domains.js';
import { CELL_WIDTH, RfbViewer } from './rfb-viewer.js';
import {
  VMDESK_CANVAS,
  commonRow,
  consolePath,
  consoleState,
  installProbe,
  readCanvas,
  signIn,
  startUi,
  textRows,
  waitConsoleState,
  waitPainted,
  widestLineCells,
  type TextRow,
  type UiServer,
} from './console-page.js';
import { pollUntil } from './poll.js';

const skip = chromiumSkipReason();
/** Light pixels of a few banner lines: a screen the guest has drawn, not an empty canvas. */
const MIN_LIGHT = 2000;

let lab: Lab;
let hv: Hypervisor;
let ui: UiServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageProblems: string[] = [];

before(async () => {
  if (skip) return;
  lab = await labUp();
  hv = await libvirtUp({ namespace: 'vmd-host' });
  ui = await startUi(lab, ['ui', 'kvmhost']);
  browser = await launchChromium({ netns: lab.namespaces.client });
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await installProbe(context);
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
  await libvirtDown({ namespace: 'vmd-host' });
  await labDown();
}, { timeout: 120_000 });

afterEach(async () => {
  if (skip) return;
  await lab.startSshd('jump').catch(() => {});
  await stopAll(lab);
}, { timeout: 30_000 });

/** `VMDESK-LAB GUEST <name> IP <ip>` in text cells: how wide the guest's banner is drawn. */
function bannerCells(vm: string): number {
  const ip = hv.addresses.get(vm);
  assert.ok(ip, `libvirtUp knows ${vm}'s address`);
  return `VMDESK-LAB GUEST ${vm} IP ${ip}`.length;
}

/**
 * The banner row of what the page shows now; asserts light text on a mostly dark screen. The guest prints
 * `IP none` until DHCP answers and clears its screen when its address changes, so this waits (however
 * long DHCP took) for the most common row to be as wide as the banner that carries the address.
 */
async function shownBanner(p: Page, vm: string): Promise<{ banner: TextRow; rows: TextRow[] }> {
  await waitPainted(p, VMDESK_CANVAS, MIN_LIGHT, 30_000).catch((e: unknown) => {
    throw new Error(`${vm}'s console never showed light text on a dark screen`, { cause: e });
  });
  return pollUntil(
    async () => {
      const shot = await readCanvas(p);
      assert.ok(shot, 'a canvas with pixels');
      assert.ok(shot.dark > (shot.width * shot.height) / 2, `mostly dark: ${shot.dark} of ${shot.width * shot.height}`);
      const rows = textRows(shot.glyphs, shot.width, shot.height);
      return { banner: addressBanner(rows, vm), rows };
    },
    { timeoutMs: 60_000, intervalMs: 500, what: `${vm}'s banner with its address on the page` },
  );
}

/** The most common text row, which must be `bannerCells(vm)` wide: the width names the guest's name and address lengths. */
function addressBanner(rows: readonly TextRow[], vm: string): TextRow {
  const banner = commonRow(rows);
  assert.ok(banner, `${vm}'s screen has text rows`);
  assert.equal(Math.ceil(banner.extent / CELL_WIDTH), bannerCells(vm), `${vm}'s banner is ${bannerCells(vm)} cells wide`);
  return banner;
}

/** The banner row as an independent VNC client sees it, through `vmdesk vnc -d` (a TCP forward, not the browser path). */
async function bannerViaForward(vm: string): Promise<TextRow> {
  const r = await vmdeskOk(lab, ['vnc', '-d', '--json', `kvmhost/${vm}`]);
  const port = (JSON.parse(r.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
  return pollUntil(
    async () => {
      const viewer = await RfbViewer.open(await lab.clientConnect('127.0.0.1', port));
      try {
        assert.equal(viewer.name, `QEMU (${vm})`);
        return addressBanner(textRows(viewer.glyphs(), viewer.width, viewer.height), vm);
      } finally {
        viewer.close();
      }
    },
    { timeoutMs: 60_000, intervalMs: 500, what: `${vm}'s banner with its address through the forward` },
  );
}

async function openConsole(vm: string, states: readonly string[] = ['connected']): Promise<string> {
  await page.goto(`${ui.origin}${consolePath('kvmhost', LAB_DOMAINS.find((d) => d.name === vm)!)}`);
  return waitConsoleState(page, states, 60_000);
}

describe('the browser console through the jump host (chromium, real guests)', { skip }, () => {
  test("the dashboard lists the lab's VMs and flags win2019's 0.0.0.0 console as exposed", { timeout: 120_000 }, async () => {
    await page.goto(`${ui.origin}/`);
    assert.ok(!page.url().includes('token='), 'the token is not in the address bar');
    const row = (vm: string) => page.locator(`tr[data-vm="${vm}"]`);
    await row('win2016').waitFor({ timeout: 60_000 });
    for (const vm of ['win2016', 'win2019', 'rhel8', 'debian12']) assert.match(await row(vm).innerText(), /\brunning\b/, vm);
    assert.match(await row('win2012').innerText(), /shut off/);
    const win2019 = await row('win2019').innerText();
    assert.match(win2019, /0\.0\.0\.0:\d+/);
    assert.match(win2019, /exposed/i);
    assert.doesNotMatch(await row('win2016').innerText(), /exposed/i);
    assert.match(await row('rhel8').locator('td').nth(3).innerText(), /yes/i, "rhel8's console has a password");
    await saveShot(page, 'lab-dashboard');
    assert.deepEqual(pageProblems, []);
  });

  test("win2016's console connects and draws that guest's screen", { timeout: 120_000 }, async () => {
    await openConsole('win2016');
    const { banner } = await shownBanner(page, 'win2016');
    await saveShot(page, 'lab-console-win2016');
    // Pixel for pixel the same banner row a VNC client gets through a plain forward; another guest's differs.
    assert.equal(banner.hash, (await bannerViaForward('win2016')).hash, 'the browser shows the banner row win2016 draws');
    assert.notEqual(banner.hash, (await bannerViaForward('win2019')).hash, "win2019's banner row differs (the comparison can tell guests apart)");
    assert.deepEqual(pageProblems, []);
  });

  test('keys typed into the console reach the guest', { timeout: 120_000 }, async () => {
    if ((await consoleState(page)).state !== 'connected' || !page.url().includes(`uuid=${LAB_DOMAINS.find((d) => d.name === 'win2016')!.uuid}`)) await openConsole('win2016');
    await waitPainted(page, VMDESK_CANVAS, MIN_LIGHT, 30_000);
    // Every banner is the same width; the guest echoes typed keys where its next banner will start,
    // so once keys arrived some line is wider than any banner. Without them none ever is.
    const before = await readCanvas(page);
    assert.ok(before);
    const widest = widestLineCells(textRows(before.glyphs, before.width, before.height));
    await page.locator(VMDESK_CANVAS).click();
    await page.keyboard.type('vmdesk', { delay: 30 });
    const grown = await pollUntil(
      async () => {
        const now = await readCanvas(page);
        const cells = now ? widestLineCells(textRows(now.glyphs, now.width, now.height)) : 0;
        return cells >= widest + 4 ? cells : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: `a line wider than the banners (${widest.toFixed(1)} cells): the typed keys followed by the next banner` },
    );
    assert.ok(grown - widest <= 6 + 1, `at most the 6 typed characters were added (${widest.toFixed(1)} -> ${grown.toFixed(1)} cells)`);
    await saveShot(page, 'lab-console-win2016-typed');
  });

  test('debian12 (VNC on a unix socket) draws its screen', { timeout: 120_000 }, async () => {
    await openConsole('debian12');
    const { banner } = await shownBanner(page, 'debian12');
    assert.equal(banner.hash, (await bannerViaForward('debian12')).hash, 'the browser shows the banner row debian12 draws');
    await saveShot(page, 'lab-console-debian12');
  });

  test('rhel8 asks for its VNC password, then draws its screen', { timeout: 120_000 }, async () => {
    assert.equal(await openConsole('rhel8', ['password', 'connected']), 'password');
    const input = page.locator('input[type="password"]');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(VNC_PASSWORD);
    await input.press('Enter');
    await waitConsoleState(page, ['connected'], 60_000);
    await shownBanner(page, 'rhel8');
    await saveShot(page, 'lab-console-rhel8');
  });

  test("the console reconnects by itself after the jump host's sshd restarts", { timeout: 180_000 }, async () => {
    await openConsole('win2016');
    await shownBanner(page, 'win2016');
    const before = await consoleState(page);
    await lab.stopSshd('jump');
    const outageStart = Date.now();
    await waitConsoleState(page, ['disconnected', 'connecting'], 60_000);
    const during = await consoleState(page);
    // The page tries again while the jump host is down, and keeps the outage at least 3 s long.
    await pollUntil(async () => (await consoleState(page)).attempts > before.attempts, { timeoutMs: 30_000, intervalMs: 200, what: 'a reconnect attempt during the outage' });
    await sleep(Math.max(0, outageStart + 3000 - Date.now()));
    const atRestart = await consoleState(page);
    await lab.startSshd('jump');
    const restartedAt = Date.now();
    await waitConsoleState(page, ['connected'], 90_000);
    const back = await consoleState(page);
    assert.ok(back.attempts > before.attempts, `attempts grew: ${before.attempts} -> ${back.attempts}`);
    await shownBanner(page, 'win2016');
    await saveShot(page, 'lab-console-win2016-reconnected');
    console.log(`# outage: ${JSON.stringify(during)}, at restart ${JSON.stringify(atRestart)}; connected ${Date.now() - restartedAt} ms after sshd restarted, attempts ${before.attempts} -> ${back.attempts}`);
  });
});
