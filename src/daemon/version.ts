/** The running build's identity, so the CLI and the agent can tell a stale peer. */
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** package.json's version. */
export const VERSION = readVersion();

/** Changes whenever the installed code changes (the daemon module's mtime), not only on version bumps. */
export const BUILD_ID = `${VERSION}+${Math.trunc(statSync(here).mtimeMs).toString(36)}`;
