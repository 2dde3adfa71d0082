/**
 * The RDP page (web/rdp.ts) as the lab's browser tests and the bench drive it:
 * the login form, the final state, and pixels of its canvas.
 */
import type { Page } from 'playwright-core';
import { PATTERN_RGB } from './rdp-server.js';

/** Pixels of the RDP canvas in a rectangle (fractions of its size): how many are the pattern's colour, how many near-white. */
export async function sampleCanvas(p: Page, rect: { x: number; y: number; w: number; h: number }): Promise<{ width: number; height: number; pattern: number; white: number; total: number }> {
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

/** The RDP page's path for a VM of the lab's kvmhost (named by UUID, as the API does). */
export function rdpPath(vm: { uuid: string; name: string }): string {
  return `/rdp?${new URLSearchParams({ host: 'kvmhost', uuid: vm.uuid, name: vm.name }).toString()}`;
}

/** Fills the page's login form and submits it; resolves with the page's final state (connected, failed, ended). */
export async function submitLogin(page: Page, user: string, password: string): Promise<string> {
  await page.waitForSelector('#rdp-user');
  await page.fill('#rdp-user', user);
  await page.fill('#rdp-password', password);
  await page.click('#btn-connect');
  await page.waitForFunction(() => ['connected', 'failed', 'ended'].includes(document.body.dataset.state ?? ''), null, { timeout: 90_000 });
  return page.evaluate(() => document.body.dataset.state ?? '');
}

