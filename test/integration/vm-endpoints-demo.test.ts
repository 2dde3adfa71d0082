/**
 * VM endpoints followed by the demo hypervisor's simulated `virsh event`
 * (console/vm-endpoints.ts, demo/hypervisor.ts streamEvents), through the
 * agent as `vmdesk vnc -d` uses them: `ps` says the endpoints are live, and a
 * VM restarted onto another autoport (its old port now win2012's) is still the
 * VM the next connection reaches (the RFB desktop name).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDemoSite, type DemoSite } from '../../src/demo/site.js';
import { commandLine } from '../../src/libvirt/shell-quote.js';
import { rfbHello } from '../lab/rfb.js';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('VM endpoints on the demo site', () => {
  let site: DemoSite;
  let env: NodeJS.ProcessEnv;
  const vmdesk = (args: string[]): Promise<Run> =>
    new Promise((res) => {
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => res({ code, stdout, stderr }));
    });
  const virsh = async (...args: string[]) => {
    const r = await site.libvirt.run(commandLine(['virsh', '-c', site.libvirt.uri, ...args]));
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const nameAt = async (port: number) => {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((ok, fail) => sock.once('connect', ok).once('error', fail));
    return (await rfbHello(sock)).name;
  };

  before(async () => {
    site = await startDemoSite();
    env = { ...process.env, VMDESK_RUNTIME_DIR: join(mkdtempSync(join(tmpdir(), 'vmdesk-ep-')), 'rt'), SSH_AUTH_SOCK: '', SSH_ASKPASS: '', DISPLAY: '', BROWSER: '' };
  });
  after(async () => {
    await vmdesk(['stop', '--all']);
    await site.stop();
  });

  it('ps says live (events); a VM restarted onto another autoport is followed', { timeout: 90_000 }, async () => {
    const r = await vmdesk(['vnc', '-d', '--json', 'demo-kvm/win2016', '-F', site.sshConfigFile]);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { id: string; forwards: { localPort: number }[] };
    const port = info.forwards[0]!.localPort;
    let endpoints: unknown;
    for (let i = 0; i < 100; i++) {
      const ps = JSON.parse((await vmdesk(['ps', '--json'])).stdout) as { id: string; endpoints?: { mode: string } }[];
      endpoints = ps.find((t) => t.id === info.id)?.endpoints;
      if ((endpoints as { mode?: string } | undefined)?.mode === 'events') break;
      await sleep(200);
    }
    assert.deepEqual(endpoints, { mode: 'events' });
    assert.match((await vmdesk(['ps'])).stdout, new RegExp(`tunnel ${info.id}: endpoints live \\(events\\)`));
    assert.equal(await nameAt(port), 'win2016');
    assert.equal(await nameAt(port), 'win2016');
    const uuid = /^(\S+) win2016$/m.exec(await virsh('list', '--all', '--uuid', '--name'))![1]!;
    const portOf = async (vm: string) => Number(/:(\d+)\s*$/.exec((await virsh('domdisplay', vm)).trim())![1]);
    const oldPort = await portOf(uuid);
    await virsh('destroy', uuid);
    await virsh('start', 'win2012');
    assert.equal(await portOf('win2012'), oldPort, "win2012 owns win2016's old port");
    await virsh('start', uuid);
    assert.notEqual(await portOf(uuid), oldPort);
    assert.equal(await nameAt(port), 'win2016');
    assert.equal(await nameAt(port), 'win2016');
    await virsh('destroy', 'win2012');
  });
});
