/**
 * VMs by name against the real hypervisor, through the jump host, as the
 * client user types it: `vmdesk ls`, `vnc`, `rdp`, `open`, with QEMU's own VNC
 * servers (the desktop name in RFB's ServerInit proves which VM answered),
 * a real VNC client (vncsnapshot), the guests' RDP-port banners, and VM names
 * built to inject shell commands.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labDown, labUp, type Lab } from './lab.js';
import { EXIT, assertExit, parseJsonError, stopAll, vmdeskOk } from './cli-contract.js';
import { libvirtDown, libvirtUp, type Hypervisor } from './libvirt/hypervisor.js';
import { HOSTILE_NAMES, WIN2016_IP, WIN2016_MAC } from './libvirt/domains.js';
import { rfbHello } from './rfb.js';
import { fileExists } from './files.js';

let lab: Lab;
let hv: Hypervisor;
before(async () => {
  lab = await labUp();
  hv = await libvirtUp({ namespace: 'vmd-host' });
}, { timeout: 600_000 });
after(async () => {
  await libvirtDown({ namespace: 'vmd-host' });
  await labDown();
}, { timeout: 120_000 });
afterEach(() => stopAll(lab), { timeout: 30_000 });

interface LsVm {
  name?: string;
  state: string;
  graphics: { type: string; port?: number; hasPassword: boolean; listens: { address?: string }[] }[];
  interfaces: { mac: string }[];
  addresses: { ip: string; source: string; mac: string }[];
}

async function nameAt(port: number): Promise<{ name?: string; securityTypes: number[] }> {
  return rfbHello(await lab.clientConnect('127.0.0.1', port));
}

async function readBanner(port: number): Promise<string> {
  const sock = await lab.clientConnect('127.0.0.1', port);
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(text);
    }, 5000);
    sock.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) {
        clearTimeout(timer);
        sock.destroy();
        resolve(text);
      }
    });
    sock.on('error', reject);
  });
}


describe('VMs by name through the jump host', () => {
  test('ls lists every VM with state, console, password flag, and win2016 found by its MAC', { timeout: 120_000 }, async () => {
    const r = await vmdeskOk(lab, ['ls', 'kvmhost', '--json']);
    const [host] = JSON.parse(r.stdout) as { host: string; vms: LsVm[] }[];
    assert.equal(host!.host, 'kvmhost');
    const byName = new Map(host!.vms.map((v) => [v.name, v]));
    for (const d of hv.domains) assert.ok(byName.has(d.name), `ls shows ${JSON.stringify(d.name)}`);
    const win2016 = byName.get('win2016')!;
    assert.equal(win2016.state, 'running');
    assert.equal(win2016.interfaces[0]!.mac, WIN2016_MAC);
    assert.deepEqual(
      win2016.addresses.filter((a) => a.source === 'lease').map((a) => a.ip),
      [WIN2016_IP],
    );
    assert.equal(byName.get('win2012')!.state, 'shut off');
    assert.equal(byName.get('rhel8')!.graphics[0]!.hasPassword, true);
    assert.equal(byName.get('win2016')!.graphics[0]!.hasPassword, false);
    assert.equal(byName.get('win2019')!.graphics[0]!.listens[0]!.address, '0.0.0.0');
    const table = await vmdeskOk(lab, ['ls', 'kvmhost']);
    assert.match(table.stdout, /win2019 .*EXPOSED/);
    // The REACH column quotes hostile names so a copied command runs nothing else.
    assert.ok(table.stdout.includes(`vmdesk vnc 'kvmhost/x'\\''; touch pwned; echo '\\'''`), table.stdout);
  });

  test('vnc reaches win2016 on the host loopback; a real VNC client gets a frame', { timeout: 120_000 }, async () => {
    const r = await vmdeskOk(lab, ['vnc', '-d', '--json', 'kvmhost/win2016']);
    const info = JSON.parse(r.stdout) as { url: string; forwards: { localPort: number }[] };
    const port = info.forwards[0]!.localPort;
    assert.equal(info.url, `vnc://127.0.0.1:${port}`);
    assert.equal((await nameAt(port)).name, 'QEMU (win2016)');
    const shot = await lab.runClient(['vncsnapshot', '-quiet', '-allowblank', `127.0.0.1::${port}`, '/tmp/vmdesk-lab-win2016.jpg'], { timeoutMs: 60_000 });
    assert.equal(shot.code, 0, shot.stderr);
  });

  test('vnc reaches consoles on 0.0.0.0 (through loopback), on a unix socket, and with a password', { timeout: 120_000 }, async () => {
    for (const [vm, expectPassword] of [
      ['win2019', false],
      ['debian12', false],
      ['rhel8', true],
    ] as const) {
      const r = await vmdeskOk(lab, ['vnc', '-d', '--json', `kvmhost/${vm}`]);
      const port = (JSON.parse(r.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
      const hello = await nameAt(port);
      if (expectPassword) assert.deepEqual(hello.securityTypes, [2], `${vm} asks for VNC authentication`);
      else assert.equal(hello.name, `QEMU (${vm})`);
    }
  });

  test('hostile VM names are reached, and no injected command ran anywhere', { timeout: 120_000 }, async () => {
    for (const name of HOSTILE_NAMES) {
      const r = await vmdeskOk(lab, ['vnc', '-d', '--json', `kvmhost/${name}`]);
      const port = (JSON.parse(r.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
      assert.equal((await nameAt(port)).name, `QEMU (${name})`);
    }
    for (const dir of ['/', '/tmp', '/home/labuser', '/home/vmdclient', process.cwd(), '/var/lib/libvirt/qemu']) {
      assert.equal(await fileExists(`${dir}/pwned`), false, `${dir}/pwned`);
      assert.equal(await fileExists(`${dir}/pwned2`), false, `${dir}/pwned2`);
    }
  });

  test('rdp finds win2016 by MAC and reaches its port 3389; the .rdp file points at the forward', { timeout: 120_000 }, async () => {
    const r = await vmdeskOk(lab, ['rdp', '-d', '--json', 'kvmhost/win2016']);
    const info = JSON.parse(r.stdout) as { guestIp: string; address: string; rdpFile: string };
    assert.equal(info.guestIp, WIN2016_IP);
    const port = Number(info.address.split(':')[1]);
    assert.match(await readBanner(port), /RDP-LAB win2016/);
    assert.match(await lab.runClient(['cat', info.rdpFile]).then((x) => x.stdout), new RegExp(`full address:s:127\\.0\\.0\\.1:${port}`));
  });

  test('open forwards VNC and RDP of one VM in one tunnel', { timeout: 120_000 }, async () => {
    const r = await vmdeskOk(lab, ['open', '--json', 'kvmhost/win2016']);
    const info = JSON.parse(r.stdout) as { url: string; rdp: string };
    assert.equal((await nameAt(Number(info.url.split(':')[2]))).name, 'QEMU (win2016)');
    assert.match(await readBanner(Number(info.rdp.split(':')[1])), /RDP-LAB win2016/);
  });

  test('a shut-off VM, a typo and a VM restarted behind a live forward', { timeout: 180_000 }, async () => {
    const off = await lab.vmdesk(['vnc', '-d', '--json', 'kvmhost/win2012']);
    assertExit(off, EXIT.VM_NOT_RUNNING);
    assert.equal(parseJsonError(off).error.code, 'VM_NOT_RUNNING');
    const typo = await lab.vmdesk(['vnc', '-d', 'kvmhost/win2061']);
    assertExit(typo, EXIT.VM_NOT_FOUND);
    assert.match(typo.stderr, /win2016/);
    // The console is looked up per connection: a restarted VM (new QEMU, new autoport) is reached again.
    const r = await vmdeskOk(lab, ['vnc', '-d', '--json', 'kvmhost/win2019']);
    const port = (JSON.parse(r.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
    assert.equal((await nameAt(port)).name, 'QEMU (win2019)');
    assert.equal((await hv.virsh(['destroy', '--domain', 'win2019'])).code, 0);
    assert.equal((await hv.virsh(['start', '--domain', 'win2019'])).code, 0);
    assert.equal((await nameAt(port)).name, 'QEMU (win2019)');
  });

  test('a shut-off VM started with --start is reached', { timeout: 240_000 }, async () => {
    const r = await vmdeskOk(lab, ['vnc', '-d', '--json', '--start', 'kvmhost/win2012'], 180_000);
    const port = (JSON.parse(r.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
    assert.equal((await nameAt(port)).name, 'QEMU (win2012)');
    assert.equal((await hv.virsh(['destroy', '--domain', 'win2012'])).code, 0);
  });

  test('named hosts from ~/.config/vmdesk/config.yaml: hosts, ls of all, and a bare VM name', { timeout: 120_000 }, async () => {
    // Two steps so both new directories belong to the client user.
    await lab.writeClientFile('.config/.keep', '');
    await lab.writeClientFile('.config/vmdesk/config.yaml', 'hosts:\n  lab: kvmhost\n');
    try {
      const hosts = JSON.parse((await vmdeskOk(lab, ['hosts', '--json'])).stdout) as { hosts: { name: string; reachable: boolean; libvirt: boolean }[] };
      assert.deepEqual(
        hosts.hosts.map((h) => [h.name, h.reachable, h.libvirt]),
        [['lab', true, true]],
      );
      const all = JSON.parse((await vmdeskOk(lab, ['ls', '--json'])).stdout) as { host: string; vms: LsVm[] }[];
      assert.deepEqual(all.map((h) => h.host), ['lab']);
      assert.ok(all[0]!.vms.some((v) => v.name === 'win2016'));
      const r = await vmdeskOk(lab, ['vnc', '-d', '--json', 'win2016']);
      const port = (JSON.parse(r.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
      assert.equal((await nameAt(port)).name, 'QEMU (win2016)');
      const bad = await lab.vmdesk(['ls', '--json', '--config', '/nonexistent/config.yaml']);
      assert.equal(parseJsonError(bad).error.code, 'CONFIG_INVALID');
    } finally {
      await lab.writeClientFile('.config/vmdesk/config.yaml', '');
    }
  });
});
