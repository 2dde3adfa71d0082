import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeStaleOpenFiles } from './browser.js';

const BROWSER_MODULE = fileURLToPath(new URL('./browser.ts', import.meta.url));

function privateDir(): string {
  return mkdtempSync(join(tmpdir(), 'vmdesk-open-'));
}

/** A PID that ran and is gone. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('the browser redirect file (it carries the token)', () => {
  it('is removed when the process that wrote it exits', () => {
    const dir = privateDir();
    const script = `import { openBrowser } from ${JSON.stringify(BROWSER_MODULE)};
      import { readdirSync } from 'node:fs';
      const opened = await openBrowser('http://127.0.0.1:1/#token=secret', { BROWSER: 'true', VMDESK_RUNTIME_DIR: ${JSON.stringify(dir)} });
      process.stdout.write(JSON.stringify({ opened, files: readdirSync(${JSON.stringify(dir)}) }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const seen = JSON.parse(out) as { opened: boolean; files: string[] };
    assert.equal(seen.opened, true);
    assert.equal(seen.files.filter((f) => /^open-\d+\.html$/.test(f)).length, 1, 'the file existed while the process ran');
    assert.deepEqual(readdirSync(dir), [], 'and is gone after it exited');
  });

  it('of a process that died without exiting is removed by the next; live ones and other files stay', () => {
    const dir = privateDir();
    const dead = `open-${deadPid()}.html`;
    const live = `open-${process.ppid}.html`;
    for (const f of [dead, live, 'agent.log', 'open-x.html']) writeFileSync(join(dir, f), 'x');
    removeStaleOpenFiles(dir);
    assert.deepEqual(readdirSync(dir).sort(), [live, 'agent.log', 'open-x.html'].sort());
  });
});
