/**
 * Debian's chromium driven by playwright-core, for tests that look at real
 * pixels. In the lab the browser runs inside a network namespace (the client
 * machine) through a tiny wrapper: playwright talks to it over a pipe, which
 * `ip netns exec` passes through.
 */
import { accessSync, constants, chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.VMDESK_CHROMIUM ?? '/usr/bin/chromium';

/** Where screenshots are saved (kept after the run; the README shows two of them). */
export const SHOT_DIR = process.env.VMDESK_SHOT_DIR ?? join(tmpdir(), 'vmdesk-screenshots');

export function hasChromium(): boolean {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Why browser tests cannot run here, or undefined when they can. In CI a missing browser is a failure, not a skip. */
export function chromiumSkipReason(): string | undefined {
  if (hasChromium()) return undefined;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
  return `no ${CHROMIUM} (apt-get install chromium)`;
}

/** Launch headless chromium, inside network namespace `netns` when given. */
export async function launchChromium(opts: { netns?: string } = {}): Promise<Browser> {
  let executablePath = CHROMIUM;
  if (opts.netns) {
    const dir = join(tmpdir(), 'vmdesk-chromium');
    mkdirSync(dir, { recursive: true });
    executablePath = join(dir, `chromium-in-${opts.netns}`);
    writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${opts.netns} ${CHROMIUM} "$@"\n`);
    chmodSync(executablePath, 0o755);
  }
  return chromium.launch({ executablePath, args: ['--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'] });
}

/** Saves a screenshot under SHOT_DIR; returns its path. */
export async function saveShot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOT_DIR, { recursive: true });
  const file = join(SHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Counts of light and dark pixels inside the console canvas (or a rectangle of it), for "is the guest's screen drawn". */
export async function canvasStats(page: Page, rect?: { x: number; y: number; w: number; h: number }): Promise<{ width: number; height: number; light: number; dark: number; hash: string }> {
  return page.evaluate((r) => {
    const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
    if (!canvas || canvas.width === 0) return { width: 0, height: 0, light: 0, dark: 0, hash: '' };
    const ctx = canvas.getContext('2d')!;
    const area = r ?? { x: 0, y: 0, w: canvas.width, h: canvas.height };
    const { data } = ctx.getImageData(area.x, area.y, area.w, area.h);
    let light = 0;
    let dark = 0;
    let h = 2166136261;
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
      if (y > 160) light++;
      else if (y < 60) dark++;
      if (i % 64 === 0) h = Math.imul(h ^ (data[i]! ^ (data[i + 1]! << 8) ^ (data[i + 2]! << 16)), 16777619) >>> 0;
    }
    return { width: canvas.width, height: canvas.height, light, dark, hash: h.toString(16) };
  }, rect);
}
