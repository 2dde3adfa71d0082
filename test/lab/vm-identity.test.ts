/**
 * The wrong VM is never touched, against real libvirtd: virsh reads a
 * `--domain` text as an ID first, then a UUID, then a name. Besides the
 * lab's domains (only win2016 is started, so it holds the ID 1) this file
 * defines two of its own, both shut off with VNC on 0.0.0.0: a VM named `1`
 * and a VM named like win2016's UUID. Every command the client user types
 * through the jump host must act on the VM named, and win2016's persistent
 * definition (`virsh dumpxml --inactive --security-info`) must stay byte for
 * byte what it was.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { labDown, labUp, type Lab } from './lab.js';
import { EXIT, assertExit, stopAll, vmdeskOk } from './cli-contract.js';
import { libvirtDown, libvirtUp, type Hypervisor } from './libvirt/hypervisor.js';
import { LAB_DOMAINS, LAB_UUID_PREFIX, type LabDomain } from './libvirt/domains.js';
import { defineGuest, inactiveXml, listenAddresses, networkXmlOnHost, startGuest } from './libvirt/host-probes.js';
import { rfbHello } from './rfb.js';
import { startUi } from './console-page.js';

const WIN2016 = LAB_DOMAINS.find((d) => d.name === 'win2016')!;
/** Named like the ID win2016 gets as the only running guest. */
const ONE: LabDomain = { name: '1', uuid: `${LAB_UUID_PREFIX}00000000e001`, mac: '52:54:00:6c:e0:01', graphics: 'exposed', isRunning: false };
/** Named like win2016's UUID. */
const UUID_NAMED: LabDomain = { name: WIN2016.uuid, uuid: `${LAB_UUID_PREFIX}00000000e002`, mac: '52:54:00:6c:e0:02', graphics: 'exposed', isRunning: false };
const EXTRA = [ONE, UUID_NAMED];
const HOST_BACKUP_DIR = '/home/labuser/.local/state/vmdesk/backups';
const EXIT_AUDIT_EXPOSED = 21;
const PIN_IP = '192.168.122.231';

let lab: Lab;
let hv: Hypervisor;
let win2016Xml: string;

async function virshOut(args: string[]): Promise<string> {
  const r = await hv.virsh(args);
  assert.equal(r.code, 0, `virsh ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const stateOf = async (d: LabDomain) => (await virshOut(['domstate', '--domain', d.uuid])).trim();
/** The consoles' listen addresses of a domain's persistent definition, looked up by UUID. */
const listensOf = async (d: LabDomain) => listenAddresses(await virshOut(['dumpxml', '--inactive', '--domain', d.uuid]));

async function assertWin2016Untouched(what: string): Promise<void> {
  assert.equal(await inactiveXml(hv, WIN2016.uuid), win2016Xml, `${what}: win2016's definition is byte for byte what it was`);
  assert.equal(await stateOf(WIN2016), 'running', `${what}: win2016 still runs`);
}

/** The desktop name QEMU sends (`QEMU (NAME)`) through a `vmdesk vnc -d` forward. */
async function desktopName(args: string[]): Promise<string | undefined> {
  const r = await vmdeskOk(lab, ['vnc', '-d', '--json', ...args], 120_000);
  const port = (JSON.parse(r.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
  return (await rfbHello(await lab.clientConnect('127.0.0.1', port))).name;
}

before(async () => {
  lab = await labUp();
  hv = await libvirtUp({ namespace: 'vmd-host', startGuests: false });
  await startGuest(hv, WIN2016);
  for (const d of EXTRA) await defineGuest(hv, d, { start: false });
  win2016Xml = await inactiveXml(hv, WIN2016.uuid);
}, { timeout: 600_000 });

after(async () => {
  for (const d of EXTRA) {
    await hv?.virsh(['destroy', '--domain', d.uuid]).catch(() => undefined);
    await hv?.virsh(['undefine', '--domain', d.uuid]).catch(() => undefined);
  }
  for (const f of await readdir(HOST_BACKUP_DIR).catch(() => [] as string[])) {
    if (f.startsWith(LAB_UUID_PREFIX)) await rm(join(HOST_BACKUP_DIR, f), { force: true });
  }
  await libvirtDown({ namespace: 'vmd-host' });
  await labDown();
}, { timeout: 120_000 });
afterEach(() => stopAll(lab), { timeout: 30_000 });

describe('a VM named 1 and a VM named like a UUID, through the jump host', () => {
  test('virsh itself reads `1` as win2016 (its ID) and the UUID-shaped name as win2016', async () => {
    assert.equal((await virshOut(['domname', '1'])).trim(), 'win2016', 'the only running guest has the ID 1');
    assert.equal((await virshOut(['domname', WIN2016.uuid])).trim(), 'win2016');
  });

  test("audit's fix lines move the consoles of `1` and of the UUID-named VM, never win2016's", { timeout: 180_000 }, async () => {
    const r = await lab.vmdesk(['audit', 'kvmhost', '--json'], { timeoutMs: 60_000 });
    assertExit(r, EXIT_AUDIT_EXPOSED);
    const findings = (JSON.parse(r.stdout) as { reports: { findings: { vm?: string; uuid?: string; fix: string }[] }[] }).reports[0]!.findings;
    for (const d of EXTRA) {
      const f = findings.find((x) => x.vm === d.name);
      assert.ok(f, `${d.name} is exposed`);
      assert.equal(f.uuid, d.uuid);
      assert.equal(f.fix, `vmdesk vnc-listen kvmhost/${d.name} 127.0.0.1`, 'a shut-off VM needs no restart');
      // The fix line, exactly as printed (the names need no quoting).
      const moved = await vmdeskOk(lab, [...f.fix.split(' ').slice(1), '--json']);
      const change = JSON.parse(moved.stdout) as { vm: string; uuid: string; isChanged: boolean };
      assert.deepEqual([change.vm, change.uuid, change.isChanged], [d.name, d.uuid, true]);
      assert.deepEqual(await listensOf(d), ['127.0.0.1']);
      await assertWin2016Untouched(f.fix);
    }
  });

  test('audit --fix acts on `1` by its UUID', { timeout: 180_000 }, async () => {
    await vmdeskOk(lab, ['vnc-listen', 'kvmhost/1', '0.0.0.0', '--yes']);
    assert.deepEqual(await listensOf(ONE), ['0.0.0.0']);
    await assertWin2016Untouched('vnc-listen kvmhost/1 0.0.0.0');
    const r = await lab.vmdesk(['audit', 'kvmhost', '--fix', '--yes', '--json'], { timeoutMs: 120_000 });
    // The lab's own exposed VMs (win2019, the network listen) are fixed too; what matters is which VM changed.
    assert.ok(r.code === EXIT.OK || r.code === EXIT_AUDIT_EXPOSED, r.stdout + r.stderr);
    const changes = (JSON.parse(r.stdout) as { changes: { vm: string; uuid: string }[] }).changes;
    assert.ok(changes.some((c) => c.vm === '1' && c.uuid === ONE.uuid), r.stdout);
    assert.ok(!changes.some((c) => c.uuid === WIN2016.uuid), 'win2016 is not among the changes');
    assert.deepEqual(await listensOf(ONE), ['127.0.0.1']);
    await assertWin2016Untouched('audit --fix');
  });

  test('vnc and rdp of the shut-off `1` are VM_NOT_RUNNING, not a tunnel to win2016', { timeout: 120_000 }, async () => {
    for (const cmd of ['vnc', 'rdp']) {
      const r = await lab.vmdesk([cmd, '-d', '--json', 'kvmhost/1'], { timeoutMs: 60_000 });
      assertExit(r, EXIT.VM_NOT_RUNNING);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'VM_NOT_RUNNING');
    }
  });

  test("another VM's UUID, written as a VM name, is VM_NOT_FOUND naming that VM (no fallback to a UUID lookup)", { timeout: 60_000 }, async () => {
    const win2019 = LAB_DOMAINS.find((d) => d.name === 'win2019')!;
    const r = await lab.vmdesk(['vnc', '-d', '--json', `kvmhost/${win2019.uuid}`], { timeoutMs: 60_000 });
    assertExit(r, EXIT.VM_NOT_FOUND);
    const e = (JSON.parse(r.stdout) as { error: { code: string; context: Record<string, unknown> } }).error;
    assert.deepEqual([e.code, e.context['uuidOf']], ['VM_NOT_FOUND', 'win2019'], 'the hint names the VM whose UUID it is');
  });

  test('pin-ip kvmhost/1 reserves the address for the MAC of `1`, and win2016 keeps its reservation', { timeout: 120_000 }, async () => {
    const hostsOf = async () => [...(await networkXmlOnHost(hv, { inactive: true })).matchAll(/<host [^>]*\/>/g)].map((m) => m[0]).sort();
    const before = await hostsOf();
    const r = await vmdeskOk(lab, ['pin-ip', 'kvmhost/1', PIN_IP, '--json']);
    const pin = JSON.parse(r.stdout) as { vm: string; mac: string; ip: string; action: string };
    assert.deepEqual([pin.vm, pin.mac, pin.ip, pin.action], ['1', ONE.mac, PIN_IP, 'add']);
    const after = await hostsOf();
    assert.deepEqual(after.filter((h) => !before.includes(h)), [`<host mac='${ONE.mac}' name='1' ip='${PIN_IP}'/>`]);
    assert.deepEqual(before.filter((h) => !after.includes(h)), [], "win2016's reservation is still there");
    await vmdeskOk(lab, ['pin-ip', 'kvmhost/1', '--remove']);
    assert.deepEqual(await hostsOf(), before);
  });

  test('vnc --start starts `1` and the UUID-named VM, and each forward reaches its own console', { timeout: 300_000 }, async () => {
    assert.equal(await desktopName(['--start', 'kvmhost/1']), 'QEMU (1)');
    assert.equal(await stateOf(ONE), 'running');
    assert.equal(await desktopName(['--start', `kvmhost/${WIN2016.uuid}`]), `QEMU (${WIN2016.uuid})`);
    assert.equal(await stateOf(UUID_NAMED), 'running');
    assert.equal(await desktopName(['kvmhost/win2016']), 'QEMU (win2016)');
    await assertWin2016Untouched('vnc --start');
  });

  test("the dashboard's API reads and moves `1` by its UUID only, and never win2016", { timeout: 180_000 }, async () => {
    const ui = await startUi(lab, ['ui', 'kvmhost']);
    try {
      const token = new URL(ui.url).hash.slice('#token='.length);
      const { host, port } = new URL(ui.origin);
      /** An HTTP request from the client's namespace, as the browser there would send it. */
      const api = async (path: string, method = 'GET', body?: string): Promise<{ status: number; json: Record<string, unknown> }> => {
        const sock = await lab.clientConnect('127.0.0.1', Number(port));
        return new Promise((res, rej) => {
          const req = http.request(
            { createConnection: () => sock, path, method, headers: { host, origin: ui.origin, authorization: `Bearer ${token}`, 'content-type': 'application/json' } },
            (r) => {
              let text = '';
              r.on('data', (d) => (text += d));
              r.on('end', () => res({ status: r.statusCode!, json: JSON.parse(text || '{}') as Record<string, unknown> }));
            },
          );
          req.on('error', rej);
          req.end(body);
        });
      };
      const list = await api('/api/hosts/kvmhost/vms');
      assert.equal(list.status, 200);
      const vms = list.json['vms'] as { name: string; uuid: string }[];
      assert.equal(vms.find((v) => v.name === '1')?.uuid, ONE.uuid);
      assert.equal(vms.find((v) => v.name === WIN2016.uuid)?.uuid, UUID_NAMED.uuid);
      const one = await api(`/api/hosts/kvmhost/vms/${ONE.uuid}`);
      assert.equal((one.json['vm'] as { name: string }).name, '1');
      assert.equal((await api('/api/hosts/kvmhost/vms/1')).status, 400, 'a name (here also an ID) is not a VM identity in the API');
      const named = await api(`/api/hosts/kvmhost/vms/${UUID_NAMED.uuid}`);
      assert.equal((named.json['vm'] as { name: string }).name, WIN2016.uuid);

      await vmdeskOk(lab, ['vnc-listen', 'kvmhost/1', '0.0.0.0', '--yes']);
      const moved = await api(`/api/hosts/kvmhost/vms/${ONE.uuid}/vnc-listen`, 'POST', JSON.stringify({ address: '127.0.0.1' }));
      assert.equal(moved.status, 200, JSON.stringify(moved.json));
      assert.deepEqual([moved.json['vm'], moved.json['uuid']], ['1', ONE.uuid]);
      assert.deepEqual(await listensOf(ONE), ['127.0.0.1']);
      await assertWin2016Untouched('the API');
    } finally {
      await ui.stop();
    }
  });
});
