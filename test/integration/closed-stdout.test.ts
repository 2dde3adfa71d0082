/**
 * A reader that goes away before the command writes (`vmdesk ps --json | true`,
 * `| head -1`) ends the command quietly with its own exit status: no stack
 * trace, no INTERNAL exit. The pipe's read end is closed before the child has
 * started, so every write it makes meets EPIPE.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDemoSite, type DemoSite } from '../../src/demo/site.js';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

describe('output into a closed pipe', () => {
  let site: DemoSite;
  let env: NodeJS.ProcessEnv;

  const intoClosedPipe = (args: string[]): Promise<{ code: number | null; stderr: string }> =>
    new Promise((res) => {
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => res({ code, stderr }));
    });

  before(async () => {
    site = await startDemoSite();
    env = { ...process.env, VMDESK_RUNTIME_DIR: join(mkdtempSync(join(tmpdir(), 'vmdesk-epipe-')), 'rt'), SSH_AUTH_SOCK: '', SSH_ASKPASS: '', DISPLAY: '', BROWSER: '' };
  });
  after(() => site.stop());

  it('ps --json exits 0', { timeout: 60_000 }, async () => {
    const r = await intoClosedPipe(['ps', '--json']);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
  });

  it('ls HOST --json exits 0', { timeout: 60_000 }, async () => {
    const r = await intoClosedPipe(['ls', 'demo-kvm', '--json', '-F', site.sshConfigFile]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
  });

  it('audit HOST keeps its exit status 21 for an exposed console', { timeout: 60_000 }, async () => {
    const r = await intoClosedPipe(['audit', 'demo-kvm', '-F', site.sshConfigFile]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 21);
  });
});
