/**
 * Opening the UI in the user's browser. The URL carries the access token, so
 * it is not put on a command line (other users can read argv in `ps`): the
 * browser is given a private file (mode 0600, in the 0700 runtime directory)
 * that redirects to it, as Jupyter does. The file holds the token, so it
 * lives only as long as this process: removed when it exits, and files left
 * by processes that died without exiting (SIGKILL) are removed by the next.
 */
import { spawn } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureRuntimeDir } from '../daemon/runtime-dir.js';

function htmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** The command that opens a file or URL here, or undefined when there is no browser to open (no display). */
function opener(env: NodeJS.ProcessEnv): string[] | undefined {
  if (env.BROWSER) return env.BROWSER.split(' ').filter(Boolean);
  if (process.platform === 'darwin') return ['open'];
  if (process.platform === 'win32') return ['rundll32', 'url.dll,FileProtocolHandler'];
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return undefined;
  return ['xdg-open'];
}

const OPEN_FILE = /^open-(\d+)\.html$/;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists (another user's); only ESRCH says it is gone.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Removes the redirect files of vmdesk processes that no longer run (in the private runtime directory `dir`). */
export function removeStaleOpenFiles(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = OPEN_FILE.exec(name);
    if (m && Number(m[1]) !== process.pid && !isAlive(Number(m[1]))) rmSync(join(dir, name), { force: true });
  }
}

/** Try to open `url` in a browser; resolves false when none could be started (then the caller prints the URL). */
export async function openBrowser(url: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const cmd = opener(env);
  if (!cmd) return false;
  const dir = ensureRuntimeDir(env);
  removeStaleOpenFiles(dir);
  const file = join(dir, `open-${process.pid}.html`);
  // 'exit' runs on every way out but a fatal signal: return from main, process.exit, Ctrl-C through main.ts's handler.
  process.once('exit', () => rmSync(file, { force: true }));
  writeFileSync(file, `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${htmlAttr(url)}"><title>vmdesk</title><a href="${htmlAttr(url)}">Open vmdesk</a>\n`, {
    mode: 0o600,
  });
  return new Promise<boolean>((resolve) => {
    const child = spawn(cmd[0]!, [...cmd.slice(1), pathToFileURL(file).href], { detached: true, stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}
