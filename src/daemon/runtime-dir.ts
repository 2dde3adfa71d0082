/**
 * Where the per-user agent keeps its control socket and log: like ssh's
 * ControlPath, a directory only this user can enter. A directory owned by
 * someone else, or open to others, is refused (another user could otherwise
 * impersonate the agent). vmdesk sets the mode only of a directory it created
 * itself: `VMDESK_RUNTIME_DIR=$HOME` must not quietly chmod a home directory.
 */
import { mkdirSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmdeskError } from '../errors.js';

/** The runtime directory: VMDESK_RUNTIME_DIR, else $XDG_RUNTIME_DIR/vmdesk, else $TMPDIR/vmdesk-UID. */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VMDESK_RUNTIME_DIR) return env.VMDESK_RUNTIME_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'vmdesk');
  return join(tmpdir(), `vmdesk-${process.getuid?.() ?? 'user'}`);
}

/** Create (mode 0700) or check the runtime directory; returns its path. */
export function ensureRuntimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = runtimeDir(env);
  // mkdir's mode is filtered by the umask, which can only remove bits: a directory made here is at most 0700.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
    throw new VmdeskError('AGENT_UNAVAILABLE', `runtime directory ${dir} is not a directory owned by you`, {
      context: { file: dir },
      hint: 'remove it or set VMDESK_RUNTIME_DIR to a private directory',
    });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new VmdeskError('AGENT_UNAVAILABLE', `runtime directory ${dir} is open to other users (mode ${(st.mode & 0o777).toString(8).padStart(3, '0')})`, {
      context: { file: dir },
      hint: env.VMDESK_RUNTIME_DIR ? 'set VMDESK_RUNTIME_DIR to a directory only you can enter (mode 0700), or to one that does not exist yet' : `chmod 700 ${dir}`,
    });
  }
  return dir;
}

export function agentSocketPath(dir: string): string {
  return join(dir, 'agent.sock');
}

export function agentLogPath(dir: string): string {
  return join(dir, 'agent.log');
}
