import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { isVmdeskError } from '../../src/errors.js';
import { auditHost, type AuditReport } from '../../src/libvirt/audit.js';
import { pinnedIps } from '../../src/libvirt/dhcp-hosts.js';
import { isExposed } from '../../src/libvirt/domain-xml.js';
import { changeListen, pinIp, readQemuConf } from '../../src/libvirt/edits.js';
import { parseQemuConf } from '../../src/libvirt/qemu-conf.js';
import { QEMU_PROCESS_SCRIPT, parseQemuProcesses } from '../../src/libvirt/qemu-processes.js';
import { readInventory, resolveDomain, resolveVmTarget, startDomain, type RemoteExec } from '../../src/libvirt/remote.js';
import { commandLine } from '../../src/libvirt/shell-quote.js';
import { SshChain } from '../../src/ssh/chain.js';
import { startDemoSite, type DemoSite } from '../../src/demo/site.js';

const RFB_VERSION = 'RFB 003.008\n';

/** The first bytes a VNC server sends (RFC 6143 s7.1.1), then the channel is closed. */
async function readBanner(stream: Duplex): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no RFB banner within 5 s')), 5000);
      stream.on('data', (d: Buffer) => {
        chunks.push(d);
        size += d.length;
        if (size >= RFB_VERSION.length) {
          clearTimeout(timer);
          resolve(Buffer.concat(chunks).subarray(0, RFB_VERSION.length).toString('latin1'));
        }
      });
      stream.on('error', reject);
      stream.on('close', () => reject(new Error('closed before the RFB banner')));
    });
  } finally {
    stream.destroy();
  }
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('the demo site through a real two-hop SSH chain', () => {
  let site: DemoSite;
  let chain: SshChain;
  let exec: RemoteExec;
  before(async () => {
    site = await startDemoSite();
    chain = new SshChain(site.hops, { reconnect: false });
    exec = (command, opts) => chain.exec(command, opts);
    await chain.connect();
  });
  after(async () => {
    await chain?.close();
    await site?.stop();
  });

  it('keeps its key and known_hosts private, with both host keys pinned', () => {
    assert.equal(statSync(site.dir).mode & 0o777, 0o700);
    assert.equal(statSync(site.identityFile).mode & 0o777, 0o600);
    const known = readFileSync(site.knownHostsFile, 'utf8');
    assert.ok(known.includes(`[127.0.0.1]:${site.jump.port} ssh-ed25519 ${site.jump.hostPublicKey.toString('base64')}\n`));
    assert.ok(known.includes(`[127.0.0.1]:${site.hypervisor.port} ssh-ed25519 ${site.hypervisor.hostPublicKey.toString('base64')}\n`));
    assert.deepEqual(
      site.hops.map((h) => [h.label, h.transport.kind, h.host.identityAgent, h.host.strictHostKeyChecking]),
      [
        ['demo-jump', 'tcp', 'none', 'yes'],
        ['demo-kvm', 'via-previous-hop', 'none', 'yes'],
      ],
    );
  });

  it('lists the demo VMs with the real inventory code', async () => {
    assert.deepEqual(
      chain.hopStates().map((h) => [h.label, h.state]),
      [
        ['demo-jump', 'up'],
        ['demo-kvm', 'up'],
      ],
    );
    const inv = await readInventory(exec, site.libvirtUri);
    assert.equal(inv.isComplete, true);
    assert.deepEqual(
      inv.domains.map((d) => [d.name, d.state]),
      [
        ['win2016', 'running'],
        ['ubuntu-desktop', 'running'],
        ['debian12-socket', 'running'],
        ['legacy-exposed', 'running'],
        ['win2012', 'shut off'],
      ],
    );
  });

  it('opens the consoles of a TCP VM, the socket VM and the exposed VM, all speaking RFB', async () => {
    for (const vm of ['win2016', 'debian12-socket', 'legacy-exposed']) {
      const target = await resolveVmTarget(exec, { kind: 'vm', uri: site.libvirtUri, uuid: await uuidOf(vm), vm, service: 'vnc' }, site.hostName);
      assert.equal(target.kind, vm === 'debian12-socket' ? 'unix' : 'tcp', vm);
      assert.equal(await readBanner(await chain.openChannel(target)), RFB_VERSION, vm);
    }
  });

  it('starts the shut-off VM, whose console then answers', async () => {
    await startDomain(exec, site.libvirtUri, await uuidOf('win2012'));
    const target = await resolveVmTarget(exec, { kind: 'vm', uri: site.libvirtUri, uuid: await uuidOf('win2012'), vm: 'win2012', service: 'vnc' }, site.hostName);
    assert.deepEqual(target, { kind: 'tcp', host: '127.0.0.1', port: 5903 });
    assert.equal(await readBanner(await chain.openChannel(target)), RFB_VERSION);
  });

  /** The UUID of the VM named `name` exactly, as every command resolves it first. */
  async function uuidOf(name: string) {
    return (await resolveDomain(exec, site.libvirtUri, name, site.hostName, { addresses: false })).uuid;
  }

  /** What `vmdesk audit` reads from the host, over the chain. */
  async function audit(): Promise<AuditReport> {
    const [inv, ps, conf] = await Promise.all([readInventory(exec, site.libvirtUri), exec(QEMU_PROCESS_SCRIPT), readQemuConf(exec)]);
    return auditHost(site.hostName, inv, parseQemuProcesses(ps.stdout.toString('utf8')), conf === undefined ? undefined : parseQemuConf(conf));
  }

  it('audits the demo host: the exposed VM and the hand-started QEMU', async () => {
    const report = await audit();
    assert.deepEqual(
      report.findings.map((f) => [f.vm ?? f.pid, f.listen]),
      [
        ['legacy-exposed', '0.0.0.0:5902'],
        [1873, '0.0.0.0:5907'],
      ],
    );
  });

  it('moves the exposed VM to loopback and restarts it (vnc-listen --restart): its console answers on 127.0.0.1', async () => {
    const c = await changeListen(exec, site.libvirtUri, await uuidOf('legacy-exposed'), '127.0.0.1', { restart: true, force: false, shutdownTimeoutMs: 10_000 });
    assert.deepEqual([c.isChanged, c.isRestarted, c.before], [true, true, ['0.0.0.0']]);
    // The previous definition went to the host on stdin and reads back over the same chain.
    assert.equal((await exec(commandLine(['cat', c.backupPath!]))).stdout.toString('utf8'), c.backupXml);
    const target = await resolveVmTarget(exec, { kind: 'vm', uri: site.libvirtUri, uuid: await uuidOf('legacy-exposed'), vm: 'legacy-exposed', service: 'vnc' }, site.hostName);
    assert.deepEqual(target, { kind: 'tcp', host: '127.0.0.1', port: 5902 });
    assert.equal(await readBanner(await chain.openChannel(target)), RFB_VERSION);
    await assert.rejects(chain.openChannel({ kind: 'tcp', host: '0.0.0.0', port: 5902 }), (e: unknown) => isVmdeskError(e) && e.code === 'SSH_CHANNEL_REFUSED');
    const inv = await readInventory(exec, site.libvirtUri);
    const vm = inv.domains.find((d) => d.name === 'legacy-exposed')!;
    assert.deepEqual([vm.state, vm.graphics.some(isExposed)], ['running', false]);
    assert.deepEqual(
      (await audit()).findings.map((f) => f.vm ?? f.pid),
      [1873],
    );
  });

  it('pins a guest address and unpins it (pin-ip): add, none, delete', async () => {
    const pin = async (remove: boolean) => (await pinIp(exec, site.libvirtUri, await uuidOf('ubuntu-desktop'), site.hostName, { remove })).action;
    const pinned = async () => pinnedIps((await readInventory(exec, site.libvirtUri)).networks.find((n) => n.name === 'default')!);
    assert.equal(await pin(false), 'add');
    assert.equal((await pinned()).get('52:54:00:b8:72:16'), '192.168.122.38');
    assert.equal(await pin(false), 'none');
    assert.equal(await pin(true), 'delete');
    assert.equal((await pinned()).has('52:54:00:b8:72:16'), false);
    assert.equal((await pinned()).get('52:54:00:27:76:52'), '192.168.122.217');
  });

  it('keeps both backups of a VM changed twice within one second (vnc-listen there and back)', async (t) => {
    const uuid = await uuidOf('win2016');
    // One second for both: the clock stands still, as it nearly does for two quick edits.
    t.mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-12-04T20:00:00Z') });
    const opts = { restart: false, force: false };
    const there = await changeListen(exec, site.libvirtUri, uuid, '0.0.0.0', opts);
    const back = await changeListen(exec, site.libvirtUri, uuid, '127.0.0.1', opts);
    t.mock.timers.reset();
    assert.deepEqual([there.isChanged, back.isChanged, back.before], [true, true, ['0.0.0.0']]);
    assert.notEqual(there.backupPath, back.backupPath);
    for (const c of [there, back]) assert.equal((await exec(commandLine(['cat', c.backupPath!]))).stdout.toString('utf8'), c.backupXml);
  });

  it('really goes through the jump: one connection and one channel there, whatever the hypervisor carries', () => {
    assert.equal(site.jump.connectionCount, 1);
    assert.equal(site.jump.counters.channels, 1);
    assert.ok(site.hypervisor.counters.channels >= 4);
  });

  it('refuses every forward that is not a demo console, on both hosts', async () => {
    const refused = (e: unknown) => isVmdeskError(e) && e.code === 'SSH_CHANNEL_REFUSED';
    await assert.rejects(chain.openChannel({ kind: 'tcp', host: '127.0.0.1', port: site.jump.port }), refused);
    await assert.rejects(chain.openChannel({ kind: 'tcp', host: '192.168.122.217', port: 3389 }), refused);
    await assert.rejects(chain.openChannel({ kind: 'unix', path: '/var/run/libvirt/libvirt-sock' }), refused);
    const jumpOnly = new SshChain([site.hops[0]!], { reconnect: false });
    try {
      await assert.rejects(jumpOnly.openChannel({ kind: 'tcp', host: '127.0.0.1', port: 5900 }), refused);
      await assert.rejects(jumpOnly.openChannel({ kind: 'unix', path: '/var/lib/libvirt/qemu/debian12-socket.vnc' }), refused);
      await assert.rejects(jumpOnly.exec('virsh list'), refused);
    } finally {
      await jumpOnly.close();
    }
  });

  it('stops everything and removes its directory', async () => {
    await chain.close();
    const ports = [site.jump.port, site.hypervisor.port];
    await site.stop();
    assert.equal(existsSync(site.dir), false);
    for (const p of ports) assert.equal(await isListening(p), false);
  });
});
