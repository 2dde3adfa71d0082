/**
 * One lab per machine: the namespaces, users and /opt/vmdesk-lab have fixed
 * names, so two test processes building it at once would wreck each other.
 * The owner's pid sits in a lock file; a dead owner (a crashed run, or
 * `lab-cli.ts up`, which exits on purpose) is taken over, a live one is
 * waited for.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from './exec.js';

export const LOCK_FILE = '/run/vmd-lab.owner';

async function owner(): Promise<number | undefined> {
  const text = await readFile(LOCK_FILE, 'utf8').catch(() => '');
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

async function describePid(pid: number): Promise<string> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return `pid ${pid}${cmdline ? ` (${cmdline.replace(/\0/g, ' ').trim()})` : ''}`;
}

/** Takes the lab for this process, waiting up to `waitMs` for a live owner to let go. */
export async function acquireLabLock(waitMs = Number(process.env.VMD_LAB_LOCK_WAIT_MS ?? 300_000)): Promise<void> {
  const deadline = Date.now() + waitMs;
  let announced = false;
  for (;;) {
    try {
      const fh = await open(LOCK_FILE, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = await owner();
    if (pid === process.pid) return;
    if (pid === undefined || !isAlive(pid)) {
      await rm(LOCK_FILE, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(`the lab is in use by ${await describePid(pid)}; waited ${waitMs} ms (remove ${LOCK_FILE} if that is wrong)`);
    }
    if (!announced) {
      console.error(`# the lab is in use by ${await describePid(pid)}; waiting up to ${waitMs} ms`);
      announced = true;
    }
    await sleep(500);
  }
}

/** Lets go of the lab if this process holds it. */
export async function releaseLabLock(): Promise<void> {
  if ((await owner()) === process.pid) await rm(LOCK_FILE, { force: true });
}
