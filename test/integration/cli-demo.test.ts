/**
 * The CLI's VM commands against the embedded demo site, as a user would run
 * them with the ssh_config the site writes (`-F`, naming its two hosts): `vnc --browser` serves the
 * console page and its WebSocket carries the VM's RFB greeting; `audit`
 * exits 21 on the demo's exposed console; `vnc-listen` needs --yes to expose
 * and moves a console back; `pin-ip` pins and refuses.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocket } from 'ws';
import { startDemoSite, type DemoSite } from '../../src/demo/site.js';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('the CLI against the demo site', () => {
  let site: DemoSite;
  let env: NodeJS.ProcessEnv;
  let cfg: string;

  const vmdesk = (args: string[]): Promise<Run> =>
    new Promise((res) => {
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args, '-F', cfg], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => res({ code, stdout, stderr }));
    });

  before(async () => {
    site = await startDemoSite();
    const dir = mkdtempSync(join(tmpdir(), 'vmdesk-cli-demo-'));
    cfg = site.sshConfigFile;
    env = { ...process.env, VMDESK_RUNTIME_DIR: join(dir, 'rt'), SSH_AUTH_SOCK: '', SSH_ASKPASS: '', DISPLAY: '', BROWSER: '' };
  });
  after(() => site.stop());

  it('vnc --browser --no-open prints the console URL and serves it until stopped', { timeout: 60_000 }, async () => {
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN, 'vnc', 'demo-kvm/win2016', '--browser', '--no-open', '-F', cfg], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const url = await new Promise<URL>((res, rej) => {
      child.stdout!.on('data', (d) => {
        out += d;
        // The page names the VM by UUID (the API's identity); the name is only for its title.
        const m = /^(http:\/\/127\.0\.0\.1:\d+\/console\?host=demo-kvm&uuid=cf033973-fff1-4b6f-afb3-e3276b4205f1&name=win2016#token=[\w-]+)$/m.exec(out);
        if (m) res(new URL(m[1]!));
      });
      child.once('close', (code) => rej(new Error(`exited ${code}: ${out}`)));
    });
    const token = url.hash.slice('#token='.length);
    const greeting = await new Promise<string>((res, rej) => {
      const ws = new WebSocket(`ws://${url.host}/ws/console?host=demo-kvm&uuid=${url.searchParams.get('uuid')}`, { headers: { origin: url.origin, authorization: `Bearer ${token}` } });
      ws.once('message', (m: Buffer) => {
        res(m.toString('latin1'));
        ws.close();
      });
      ws.once('error', rej);
    });
    assert.equal(greeting, 'RFB 003.008\n');
    const exited = new Promise<number | null>((r) => child.once('close', r));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('vnc --browser on a shut-off VM fails before serving, with its exit code', { timeout: 60_000 }, async () => {
    const r = await vmdesk(['vnc', 'demo-kvm/win2012', '--browser', '--no-open']);
    assert.equal(r.code, 17, r.stderr);
    assert.equal(r.stdout, '');
  });

  it('audit exits 21 on the exposed demo console and names the fix', { timeout: 60_000 }, async () => {
    const r = await vmdesk(['audit', 'demo-kvm', '--json']);
    assert.equal(r.code, 21, r.stderr);
    const report = JSON.parse(r.stdout) as { exposed: number; reports: { findings: { vm?: string; pid?: number; fix: string }[] }[] };
    const findings = report.reports[0]!.findings;
    assert.ok(findings.some((f) => f.vm === 'legacy-exposed' && f.fix.startsWith('vmdesk vnc-listen demo-kvm/legacy-exposed 127.0.0.1')));
    assert.ok(findings.some((f) => f.pid !== undefined), 'the hand-started QEMU');
  });

  it('vnc-listen refuses to expose without --yes, and moves a console back to loopback with --restart', { timeout: 60_000 }, async () => {
    const refused = await vmdesk(['vnc-listen', 'demo-kvm/win2016', '0.0.0.0']);
    assert.equal(refused.code, 22, refused.stderr);
    assert.match(refused.stderr, /vmdesk vnc/);
    const moved = await vmdesk(['vnc-listen', 'demo-kvm/legacy-exposed', '127.0.0.1', '--restart', '--json']);
    assert.equal(moved.code, 0, moved.stderr);
    const change = JSON.parse(moved.stdout) as { isChanged: boolean; isRestarted: boolean; backupPath: string; backupXml?: string };
    assert.equal(change.isChanged, true);
    assert.equal(change.isRestarted, true);
    assert.equal(change.backupXml, undefined);
    const again = await vmdesk(['vnc-listen', 'demo-kvm/legacy-exposed', '127.0.0.1']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already listens on 127\.0\.0\.1/);
  });

  it('pin-ip pins the current address once, and refuses one outside the network', { timeout: 60_000 }, async () => {
    const first = await vmdesk(['pin-ip', 'demo-kvm/win2016', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const second = await vmdesk(['pin-ip', 'demo-kvm/win2016', '--json']);
    assert.equal((JSON.parse(second.stdout) as { action: string }).action, 'none');
    const outside = await vmdesk(['pin-ip', 'demo-kvm/win2016', '10.9.9.9']);
    assert.equal(outside.code, 25, outside.stderr);
    const ls = await vmdesk(['ls', 'demo-kvm']);
    assert.match(ls.stdout, /win2016 .*192\.168\.122\.\d+ \(lease, pinned\)/);
  });
});
