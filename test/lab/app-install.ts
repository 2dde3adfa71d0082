/**
 * Makes the vmdesk CLI runnable by the client user. The checkout may sit
 * under a directory other users cannot enter (CI clones as root, often under
 * /root), so instead of loosening permissions on the machine we copy what the
 * CLI needs at run time to /opt/vmdesk-lab, readable by everyone, and put a
 * `vmdesk` and a `node` on a PATH directory there. The copy is refreshed on
 * every labUp (node_modules only when the lockfile changed), so a rebuilt
 * dist/ is what the tests run.
 */
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, realpath, rm, symlink, writeFile, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { asUser, type Account } from './accounts.js';
import { runChecked, runProcess } from './exec.js';

export const APP_DIR = '/opt/vmdesk-lab';
/** Copied whole on every labUp (small); node_modules is handled separately. */
const APP_ENTRIES = ['package.json', 'bin', 'dist', 'web'];

export interface InstalledApp {
  dir: string;
  /** Put first on the client's PATH: holds `vmdesk` and `node`. */
  pathDir: string;
  nodePath: string;
  /** False when the checkout has no dist/ yet (`npm run build` was not run). */
  isBuilt: boolean;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function lockDigest(checkout: string): Promise<string> {
  for (const f of ['node_modules/.package-lock.json', 'package-lock.json']) {
    try {
      return createHash('sha256').update(await readFile(join(checkout, f))).digest('hex');
    } catch {
      // try the next one
    }
  }
  return 'none';
}

/** Can `user` execute `file`? Checked by really running it as that user. */
async function canExecute(user: Account, file: string): Promise<boolean> {
  const r = await runProcess([...asUser(user), file, '-e', '0'], { timeoutMs: 20_000 });
  return r.code === 0;
}

export async function installApp(checkout: string, clientUser: Account): Promise<InstalledApp> {
  await mkdir(APP_DIR, { recursive: true, mode: 0o755 });
  for (const entry of APP_ENTRIES) {
    await rm(join(APP_DIR, entry), { recursive: true, force: true });
    if (await exists(join(checkout, entry))) await runChecked(['cp', '-a', join(checkout, entry), join(APP_DIR, entry)]);
  }
  const digest = await lockDigest(checkout);
  const marker = join(APP_DIR, '.node_modules.sha256');
  const previous = await readFile(marker, 'utf8').catch(() => '');
  if (previous.trim() !== digest || !(await exists(join(APP_DIR, 'node_modules')))) {
    await rm(join(APP_DIR, 'node_modules'), { recursive: true, force: true });
    if (await exists(join(checkout, 'node_modules'))) await runChecked(['cp', '-a', join(checkout, 'node_modules'), join(APP_DIR, 'node_modules')]);
    await writeFile(marker, `${digest}\n`);
  }

  // node may live under /root (nvm and friends); copy it when the client user cannot run it in place.
  let nodePath = await realpath(process.execPath);
  const pathDir = join(APP_DIR, 'path');
  await rm(pathDir, { recursive: true, force: true });
  await mkdir(pathDir, { recursive: true, mode: 0o755 });
  if (!(await canExecute(clientUser, nodePath))) {
    const copy = join(APP_DIR, 'node');
    await runChecked(['cp', nodePath, copy]);
    nodePath = copy;
  }
  await runChecked(['chmod', '-R', 'a+rX,go-w', APP_DIR]);
  await symlink(nodePath, join(pathDir, 'node'));
  await symlink(join(APP_DIR, 'bin', 'vmdesk'), join(pathDir, 'vmdesk'));
  if (!(await canExecute(clientUser, join(pathDir, 'node')))) throw new Error(`${clientUser.name} cannot run ${nodePath} even after copying it to ${APP_DIR}`);
  return { dir: APP_DIR, pathDir, nodePath, isBuilt: await exists(join(APP_DIR, 'dist', 'cli', 'main.js')) };
}

export async function removeApp(): Promise<void> {
  await rm(APP_DIR, { recursive: true, force: true });
}
