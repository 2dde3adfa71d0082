/**
 * The wrong VM is never touched. The demo hypervisor looks a `--domain` up
 * as virsh does (an ID, then a UUID, then a name), and here it also holds a
 * shut-off VM named `1` (the ID of a running VM) whose console listens on
 * 0.0.0.0, and a VM named like win2016's UUID. Every command, and the
 * dashboard's API and console WebSocket, must act on the VM named, and the
 * other VM's persistent definition must stay byte for byte what it was.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocket, createWebSocketStream } from 'ws';
import { demoInventory, type DemoDomain } from '../../src/demo/demo-inventory.js';
import { startDemoSite, type DemoSite } from '../../src/demo/site.js';
import { parseDomainXml } from '../../src/libvirt/domain-xml.js';
import { parseNetworkXml } from '../../src/libvirt/network-xml.js';
import { commandLine } from '../../src/libvirt/shell-quote.js';
import { virshArgv } from '../../src/libvirt/virsh-argv.js';
import { HostSessions, startUiServer, type UiServer } from '../../src/server/index.js';
import { rfbHello } from '../lab/rfb.js';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');
const WIN2016_UUID = 'cf033973-fff1-4b6f-afb3-e3276b4205f1';

function extraDomain(over: Partial<DemoDomain> & Pick<DemoDomain, 'name' | 'uuid' | 'mac' | 'ip'>): DemoDomain {
  return {
    description: 'vmdesk test: a VM whose name virsh reads as something else',
    os: 'linux',
    memoryMiB: 512,
    vcpus: 1,
    isRunning: false,
    network: 'default',
    vnc: { kind: 'tcp', listen: '127.0.0.1' },
    background: '#333333',
    ...over,
  };
}

/** Named like the ID of a running VM (shut off, so it has no ID itself), console on every address. */
const ONE = extraDomain({ name: '1', uuid: '11111111-2222-4333-8444-000000000001', mac: '52:54:00:00:01:01', ip: '192.168.122.201', vnc: { kind: 'tcp', listen: '0.0.0.0' } });
/** Named like win2016's UUID, console on every address. */
const UUID_NAMED = extraDomain({ name: WIN2016_UUID, uuid: '11111111-2222-4333-8444-000000000002', mac: '52:54:00:00:01:02', ip: '192.168.122.202', vnc: { kind: 'tcp', listen: '0.0.0.0' } });

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('the VM named is the VM acted on (demo site, libvirt lookup order)', () => {
  let site: DemoSite;
  let env: NodeJS.ProcessEnv;
  let idOneName: string;
  const children: ChildProcess[] = [];

  const vmdesk = (args: string[]): Promise<Run> =>
    new Promise((res) => {
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args, '-F', site.sshConfigFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => res({ code, stdout, stderr }));
    });

  /** `vmdesk vnc ... --json` in the foreground: the desktop name behind the local port it prints, then Ctrl-C. */
  async function vncDesktopName(args: string[]): Promise<string | undefined> {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'vnc', '--json', ...args, '-F', site.sshConfigFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const closed = new Promise<number | null>((r) => child.once('close', r));
    const port = await new Promise<number>((res, rej) => {
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /"url":"vnc:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
        if (m) res(Number(m[1]));
      });
      child.once('close', (code) => rej(new Error(`vnc exited ${code}: ${out}${err}`)));
    });
    const hello = await rfbHello(net.connect(port, '127.0.0.1'));
    child.kill('SIGTERM');
    assert.equal(await closed, 0, err);
    return hello.name;
  }

  const virsh = async (...args: string[]) => {
    const r = await site.libvirt.run(commandLine(virshArgv(site.libvirtUri, ...args)), '');
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const inactiveXml = (uuid: string) => virsh('dumpxml', '--domain', uuid, '--inactive', '--security-info');
  const listens = async (uuid: string) => parseDomainXml(await inactiveXml(uuid)).graphics.flatMap((g) => g.listens.map((l) => l.address));
  const state = async (uuid: string) => (await virsh('domstate', '--domain', uuid)).trim();

  before(async () => {
    const inventory = demoInventory();
    inventory.domains.push(ONE, UUID_NAMED);
    site = await startDemoSite({ inventory });
    const dir = mkdtempSync(join(tmpdir(), 'vmdesk-identity-'));
    env = { ...process.env, VMDESK_RUNTIME_DIR: join(dir, 'rt'), SSH_AUTH_SOCK: '', SSH_ASKPASS: '', DISPLAY: '', BROWSER: '' };
    // What virsh itself makes of the two names: other VMs.
    idOneName = parseDomainXml(await virsh('dumpxml', '--domain', '1')).name;
    assert.notEqual(idOneName, '1', 'a running VM has the ID 1');
    assert.equal(parseDomainXml(await virsh('dumpxml', '--domain', WIN2016_UUID)).name, 'win2016');
  });
  after(async () => {
    for (const c of children) c.kill('SIGTERM');
    await site.stop();
  });

  it('vnc and rdp of the shut-off `1` say it is not running (and do not reach the VM with ID 1)', { timeout: 60_000 }, async () => {
    for (const cmd of ['vnc', 'rdp']) {
      const r = await vmdesk([cmd, 'demo-kvm/1', '-d', '--json']);
      assert.equal(r.code, 17, `${cmd}: ${r.stdout}${r.stderr}`);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'VM_NOT_RUNNING');
    }
  });

  it("the audit's fix line and audit --fix change `1`, never the VM with ID 1", { timeout: 60_000 }, async () => {
    const holderUuid = demoInventory().domains.find((d) => d.name === idOneName)!.uuid;
    const before = await inactiveXml(holderUuid);
    const audit = await vmdesk(['audit', 'demo-kvm', '--json']);
    assert.equal(audit.code, 21, audit.stderr);
    const fix = (JSON.parse(audit.stdout) as { reports: { findings: { vm?: string; uuid?: string; fix: string }[] }[] }).reports[0]!.findings.find((f) => f.vm === '1')!;
    assert.equal(fix.fix, 'vmdesk vnc-listen demo-kvm/1 127.0.0.1');
    assert.equal(fix.uuid, ONE.uuid);
    const moved = await vmdesk([...fix.fix.split(' ').slice(1), '--json']);
    assert.equal(moved.code, 0, moved.stdout + moved.stderr);
    assert.deepEqual([(JSON.parse(moved.stdout) as { vm: string }).vm, (JSON.parse(moved.stdout) as { uuid: string }).uuid], ['1', ONE.uuid]);
    assert.deepEqual(await listens(ONE.uuid), ['127.0.0.1']);
    assert.equal(await inactiveXml(holderUuid), before, `${idOneName}'s definition is untouched`);

    assert.equal((await vmdesk(['vnc-listen', 'demo-kvm/1', '0.0.0.0', '--yes'])).code, 0);
    assert.deepEqual(await listens(ONE.uuid), ['0.0.0.0']);
    const fixed = await vmdesk(['audit', 'demo-kvm', '--fix', '--yes', '--json']);
    assert.equal(fixed.code, 21, fixed.stderr); // the hand-started QEMU stays exposed
    assert.deepEqual(await listens(ONE.uuid), ['127.0.0.1']);
    assert.equal(await inactiveXml(holderUuid), before, `${idOneName}'s definition is untouched by --fix`);
  });

  it('vnc-listen of the VM named like win2016\'s UUID changes that VM, not win2016', { timeout: 60_000 }, async () => {
    const before = await inactiveXml(WIN2016_UUID);
    const r = await vmdesk(['vnc-listen', `demo-kvm/${WIN2016_UUID}`, '127.0.0.1', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((JSON.parse(r.stdout) as { uuid: string }).uuid, UUID_NAMED.uuid);
    assert.deepEqual(await listens(UUID_NAMED.uuid), ['127.0.0.1']);
    assert.equal(await inactiveXml(WIN2016_UUID), before);
  });

  it('pin-ip of `1` reserves its own MAC', { timeout: 60_000 }, async () => {
    const reservations = async () => parseNetworkXml(await virsh('net-dumpxml', '--network', 'default')).addresses.flatMap((a) => a.dhcp?.hosts ?? []);
    const before = await reservations();
    const r = await vmdesk(['pin-ip', 'demo-kvm/1', '192.168.122.201', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((JSON.parse(r.stdout) as { mac: string }).mac, ONE.mac);
    assert.deepEqual(await reservations(), [...before, { mac: ONE.mac, name: '1', ip: '192.168.122.201' }]);
  });

  it('a UUID or ID given for a name is VM_NOT_FOUND, naming the VM it belongs to', { timeout: 60_000 }, async () => {
    const legacy = demoInventory().domains.find((d) => d.name === 'legacy-exposed')!;
    const r = await vmdesk(['vnc', `demo-kvm/${legacy.uuid}`, '-d', '--json']);
    assert.equal(r.code, 12, r.stdout + r.stderr);
    const e = (JSON.parse(r.stdout) as { error: { code: string; context: Record<string, unknown> } }).error;
    assert.deepEqual([e.code, e.context['uuidOf']], ['VM_NOT_FOUND', 'legacy-exposed']);
  });

  it('vnc --start starts `1` and the VM named like a UUID, and their consoles are theirs', { timeout: 90_000 }, async () => {
    assert.equal(await state(ONE.uuid), 'shut off');
    assert.equal(await vncDesktopName(['--start', 'demo-kvm/1']), '1');
    assert.equal(await state(ONE.uuid), 'running');
    assert.equal(await vncDesktopName(['--start', `demo-kvm/${WIN2016_UUID}`]), WIN2016_UUID);
    assert.equal(await state(UUID_NAMED.uuid), 'running');
    assert.equal(await vncDesktopName(['demo-kvm/win2016']), 'win2016');
  });

  describe('the dashboard API and console WebSocket, by host and UUID', () => {
    let sessions: HostSessions;
    let ui: UiServer;
    const get = (path: string, headers: Record<string, string> = {}, method = 'GET', body?: string) =>
      new Promise<{ status: number; body: string }>((res, rej) => {
        const req = http.request({ host: '127.0.0.1', port: ui.port, path, method, headers: { host: `127.0.0.1:${ui.port}`, authorization: `Bearer ${ui.token}`, origin: `http://127.0.0.1:${ui.port}`, 'content-type': 'application/json', ...headers } }, (r) => {
          let text = '';
          r.on('data', (d) => (text += d));
          r.on('end', () => res({ status: r.statusCode!, body: text }));
        });
        req.on('error', rej);
        req.end(body);
      });

    before(async () => {
      sessions = new HostSessions([{ name: site.hostName, dest: 'demo', uri: site.libvirtUri, planHops: async () => site.hops }]);
      ui = await startUiServer({ sessions, isDemo: true });
    });
    after(async () => {
      await ui.close();
      await sessions.close();
    });

    it('lists VMs with their UUIDs and reads one only by UUID', async () => {
      const { vms } = JSON.parse((await get(`/api/hosts/${site.hostName}/vms`)).body) as { vms: { name: string; uuid: string }[] };
      assert.equal(vms.find((v) => v.name === '1')?.uuid, ONE.uuid);
      const one = await get(`/api/hosts/${site.hostName}/vms/${ONE.uuid}`);
      assert.equal((JSON.parse(one.body) as { vm: { name: string } }).vm.name, '1');
      assert.equal((await get(`/api/hosts/${site.hostName}/vms/1`)).status, 400, 'a name (or an ID) is not a VM identity here');
      const unknown = await get(`/api/hosts/${site.hostName}/vms/00000000-0000-4000-8000-00000000dead`);
      assert.equal((JSON.parse(unknown.body) as { error: { code: string } }).error.code, 'VM_NOT_FOUND');
    });

    it('moves the console of the VM with that UUID only', async () => {
      assert.equal((await vmdesk(['vnc-listen', 'demo-kvm/1', '0.0.0.0', '--yes'])).code, 0);
      const holderUuid = demoInventory().domains.find((d) => d.name === idOneName)!.uuid;
      const before = await inactiveXml(holderUuid);
      const r = await get(`/api/hosts/${site.hostName}/vms/${ONE.uuid}/vnc-listen`, {}, 'POST', JSON.stringify({ address: '127.0.0.1' }));
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(await listens(ONE.uuid), ['127.0.0.1']);
      assert.equal(await inactiveXml(holderUuid), before);
    });

    it('bridges the console WebSocket of the VM named like a UUID to that VM', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${ui.port}/ws/console?host=${site.hostName}&uuid=${UUID_NAMED.uuid}`, { headers: { origin: `http://127.0.0.1:${ui.port}`, authorization: `Bearer ${ui.token}` } });
      // The WebSocket's binary frames as a byte stream, for the RFB handshake.
      const { name } = await rfbHello(createWebSocketStream(ws) as unknown as net.Socket);
      assert.equal(name, WIN2016_UUID);
      assert.equal((await new Promise<{ status?: number }>((res) => {
        const ws = new WebSocket(`ws://127.0.0.1:${ui.port}/ws/console?host=${site.hostName}&uuid=win2016`, { headers: { origin: `http://127.0.0.1:${ui.port}`, authorization: `Bearer ${ui.token}` } });
        ws.on('unexpected-response', (_q, r) => res({ status: r.statusCode! }));
        ws.on('error', () => {});
      })).status, 400);
    });
  });
});
