/** The running build's identity, so the CLI and the agent can tell a stale peer. */
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Set by scripts/build-bundle.mjs in dist/vmdesk.mjs and dist/agent.mjs (the same for both); absent under tsc and tsx.
declare const __VMDESK_VERSION__: string | undefined;
declare const __VMDESK_BUILD_ID__: string | undefined;

function readVersion(): string {
  if (typeof __VMDESK_VERSION__ === 'string') return __VMDESK_VERSION__;
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** package.json's version. */
export const VERSION = readVersion();

/**
 * Changes whenever the installed code changes, not only on version bumps: the bundles carry the id of their build;
 * the unbundled modules use this module's mtime.
 */
export const BUILD_ID = typeof __VMDESK_BUILD_ID__ === 'string' ? __VMDESK_BUILD_ID__ : `${VERSION}+${Math.trunc(statSync(fileURLToPath(import.meta.url)).mtimeMs).toString(36)}`;

/** Whether this code runs from the bundles (dist/vmdesk.mjs, dist/agent.mjs). */
export const IS_BUNDLE = typeof __VMDESK_BUILD_ID__ === 'string';
