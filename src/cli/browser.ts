/**
 * Opening the UI in the user's browser. The URL carries the access token, so
 * it is not put on a command line (other users can read argv in `ps`): the
 * browser is given a private file (mode 0600, in the 0700 runtime directory)
 * that redirects to it, as Jupyter does.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
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

/** Try to open `url` in a browser; resolves false when none could be started (then the caller prints the URL). */
export async function openBrowser(url: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const cmd = opener(env);
  if (!cmd) return false;
  const file = join(ensureRuntimeDir(env), `open-${process.pid}.html`);
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
