/**
 * Where the per-user agent keeps its control socket and log: like ssh's
 * ControlPath, a directory only this user can enter. A directory owned by
 * someone else, or open to others, is refused (another user could otherwise
 * impersonate the agent).
 */
import { mkdirSync, lstatSync, chmodSync } from 'node:fs';
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
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
    throw new VmdeskError('AGENT_UNAVAILABLE', `runtime directory ${dir} is not a directory owned by you`, {
      context: { file: dir },
      hint: 'remove it or set VMDESK_RUNTIME_DIR to a private directory',
    });
  }
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}

export function agentSocketPath(dir: string): string {
  return join(dir, 'agent.sock');
}

export function agentLogPath(dir: string): string {
  return join(dir, 'agent.log');
}
