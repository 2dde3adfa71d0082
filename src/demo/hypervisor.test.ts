import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isVmdeskError } from '../errors.js';
import { auditHost } from '../libvirt/audit.js';
import { pinnedIps } from '../libvirt/dhcp-hosts.js';
import { asDomainUuid, parseDomstate, parseUuidList, type DomainUuid, type NetworkUuid } from '../libvirt/domain-list.js';
import { isExposed, parseDomainXml } from '../libvirt/domain-xml.js';
import { changeListen, pinIp, readQemuConf } from '../libvirt/edits.js';
import { setGraphicsListen } from '../libvirt/graphics-edit.js';
import { assembleInventory } from '../libvirt/inventory.js';
import { buildInventoryScript, newBoundary, parseInventoryOutput } from '../libvirt/inventory-script.js';
import { parseArpN, parseDhcpLeases, parseIpNeigh } from '../libvirt/leases.js';
import { parseNetworkXml } from '../libvirt/network-xml.js';
import { parseQemuConf } from '../libvirt/qemu-conf.js';
import { QEMU_PROCESS_SCRIPT, parseQemuProcesses } from '../libvirt/qemu-processes.js';
import { checkSocketAccess, readDomain, readInventory, resolveVmTarget, startDomain, type RemoteExec } from '../libvirt/remote.js';
import { commandLine, quoteArg } from '../libvirt/shell-quote.js';
import { defineArgv, destroyArgv, domstateArgv, dumpxmlArgv, netDhcpLeasesArgv, netDumpxmlArgv, netInfoArgv, netUpdateDhcpHostArgv, shutdownArgv, startArgv, virshArgv } from '../libvirt/virsh-argv.js';
import { virshError } from '../libvirt/virsh-errors.js';
import { vncTarget } from '../libvirt/vm-target.js';
import { demoInventory, type DemoDomain } from './demo-inventory.js';
import { DemoHypervisor, splitCommandLine, type DemoHypervisorOptions } from './hypervisor.js';

const URI = 'qemu:///system';
const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

function remoteExec(h: DemoHypervisor): RemoteExec {
  return async (command, opts) => {
    const r = await h.run(command, opts?.stdin ?? '');
    return { code: r.code, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr) };
  };
}

/** `virsh define` of `xml` the way changeListen sends it: through a temporary file, the XML on stdin. */
function defineLine(): string {
  const line = defineArgv(URI, '"$f"')
    .map((a) => (a === '"$f"' ? a : quoteArg(a)))
    .join(' ');
  return `sh -c ${quoteArg(`umask 077 && f=$(mktemp) || exit 70; cat > "$f"; ${line}; rc=$?; rm -f "$f"; exit $rc`)}`;
}

/** A hypervisor whose consoles are recorded (started and stopped) instead of served; guests power off after 20 ms. */
function recordingHypervisor(opts: DemoHypervisorOptions = {}) {
  const started: string[] = [];
  const stopped: string[] = [];
  const h = new DemoHypervisor({
    shutdownDelayMs: 20,
    startConsole: async (vm) => {
      started.push(vm.name);
      return { host: '127.0.0.1', port: 40000 + started.length, stop: async () => void stopped.push(vm.name) };
    },
    ...opts,
  });
  return { h, exec: remoteExec(h), started, stopped };
}

/**
 * These tests drive the simulator as virsh is driven by hand: by name, ID or UUID, whatever virsh takes
 * (vmdesk itself passes only UUIDs it resolved; see DomainUuid).
 */
const text = (s: string) => s as DomainUuid;
const netText = (s: string) => s as NetworkUuid;
/** The UUID of a demo VM, as vmdesk's operations take it. */
const uuidOf = (name: string) => asDomainUuid(demoInventory().domains.find((d) => d.name === name)!.uuid);

const virsh = async (h: DemoHypervisor, argv: string[], stdin = '') => h.run(commandLine(argv), stdin);

async function inventoryOf(h: DemoHypervisor, opts: { agentAddresses?: boolean } = {}) {
  const boundary = newBoundary();
  const r = await h.run(`sh -c ${quoteArg(buildInventoryScript(URI, boundary, opts))}`);
  assert.equal(r.code, 0);
  return { raw: parseInventoryOutput(r.stdout, boundary), stdout: r.stdout };
}

/** A demo domain with overrides, for inventories the built-in one does not cover. */
function domain(overrides: Partial<DemoDomain>): DemoDomain {
  return { ...demoInventory().domains[0]!, ...overrides };
}

describe('DemoHypervisor: the inventory script', () => {
  it('answers it with frames the real parser reads back into the demo VMs', async () => {
    const { raw } = await inventoryOf(new DemoHypervisor());
    assert.equal(raw.isComplete, true);
    assert.equal(raw.preamble, '');
    const inv = assembleInventory(raw);
    assert.match(inv.version ?? '', /libvirt 9\.0\.0/);
    const summary = Object.fromEntries(inv.domains.map((d) => [d.name, [d.state, d.id]]));
    assert.deepEqual(summary, {
      win2016: ['running', 1],
      'ubuntu-desktop': ['running', 2],
      'debian12-socket': ['running', 3],
      'legacy-exposed': ['running', 4],
      win2012: ['shut off', undefined],
    });
    const by = (name: string) => inv.domains.find((d) => d.name === name)!;
    assert.deepEqual(vncTarget(by('win2016'), 'demo-kvm'), { kind: 'tcp', host: '127.0.0.1', port: 5900 });
    assert.deepEqual(vncTarget(by('ubuntu-desktop'), 'demo-kvm'), { kind: 'tcp', host: '127.0.0.1', port: 5901 });
    assert.deepEqual(vncTarget(by('legacy-exposed'), 'demo-kvm'), { kind: 'tcp', host: '127.0.0.1', port: 5902 });
    assert.deepEqual(vncTarget(by('debian12-socket'), 'demo-kvm'), { kind: 'unix', path: '/var/lib/libvirt/qemu/debian12-socket.vnc' });
    assert.throws(() => vncTarget(by('win2012'), 'demo-kvm'), (e: unknown) => isVmdeskError(e) && e.code === 'VM_NOT_RUNNING');
    assert.equal(isExposed(by('legacy-exposed').graphics[0]!), true);
    assert.equal(isExposed(by('win2016').graphics[0]!), false);
    assert.ok(inv.domains.every((d) => d.arePasswordsKnown && !d.graphics.some((g) => g.hasPassword)));
    assert.deepEqual(by('win2016').addresses, [
      { ip: '192.168.122.217', mac: '52:54:00:27:76:52', source: 'lease', via: 'default' },
      { ip: '192.168.122.217', mac: '52:54:00:27:76:52', source: 'neigh', via: 'virbr0' },
    ]);
    assert.deepEqual(by('win2012').addresses, []);
    assert.deepEqual(
      inv.networks.map((n) => [n.name, n.leases.length]),
      [['default', 4]],
    );
  });

  it('frames sections the way the script does (batch section, neighbours, done)', async () => {
    const { raw } = await inventoryOf(new DemoHypervisor());
    const kinds = raw.sections.map((s) => `${s.kind} ${s.key.length === 36 ? 'UUID' : s.key}`);
    assert.deepEqual(kinds.slice(0, 7), ['version -', 'list all', 'list running', 'list paused', 'list shutoff', 'list other', 'net-list all']);
    assert.deepEqual(kinds.slice(-3), ['net-dhcp-leases UUID', 'batch 14', 'neigh ip']);
    assert.ok(raw.sections.every((s) => s.exitCode === 0 && s.stderr === ''));
    const listAll = raw.sections.find((s) => s.kind === 'list' && s.key === 'all')!;
    assert.equal(parseUuidList(listAll.stdout).length, 5);
  });

  it('redacts console passwords as the script does, and shows them only with --security-info', async () => {
    const inventory = demoInventory();
    inventory.domains = [domain({ name: 'rhel8', uuid: '3d789243-9fc9-4f47-b8e6-a7a6495753ce', vncPassword: 'Lab-pw1' })];
    const h = new DemoHypervisor({ inventory });
    const { raw, stdout } = await inventoryOf(h);
    assert.ok(stdout.includes(" passwd='(redacted)'"));
    assert.ok(!stdout.includes('Lab-pw1'));
    assert.equal(assembleInventory(raw).domains[0]!.graphics[0]!.hasPassword, true);
    const plain = await h.run(commandLine(dumpxmlArgv(URI, text('rhel8'))));
    assert.ok(!plain.stdout.includes('passwd='));
    const secure = await h.run(commandLine(dumpxmlArgv(URI, text('rhel8'), { securityInfo: true })));
    assert.ok(secure.stdout.includes(" passwd='Lab-pw1'"));
  });

  it('fails the domain list with libvirt\'s error for a URI it does not serve', async () => {
    const h = new DemoHypervisor();
    const boundary = newBoundary();
    const r = await h.run(`sh -c ${quoteArg(buildInventoryScript('qemu+ssh://elsewhere/system', boundary))}`);
    assert.throws(
      () => assembleInventory(parseInventoryOutput(r.stdout, boundary)),
      (e: unknown) => isVmdeskError(e) && e.code === 'LIBVIRT_UNAVAILABLE',
    );
  });

  it('reports agent sections as failed alone when the script asks for them', async () => {
    const { raw } = await inventoryOf(new DemoHypervisor(), { agentAddresses: true });
    const agent = raw.sections.filter((s) => s.kind === 'domifaddr-agent');
    assert.equal(agent.length, 4);
    assert.ok(agent.every((s) => s.exitCode === 1 && /guest agent is not configured/.test(s.stderr)));
    assert.equal(raw.sections.find((s) => s.kind === 'batch')!.exitCode, 1);
    assert.equal(assembleInventory(raw).domains.length, 5);
  });
});

describe('DemoHypervisor: single commands', () => {
  it('answers domstate in the argv builders\' form and the positional one', async () => {
    const h = new DemoHypervisor();
    const r = await h.run(commandLine(domstateArgv(URI, text('win2016'))));
    assert.deepEqual(r, { code: 0, stdout: 'running (booted)\n\n', stderr: '' });
    const off = await h.run(commandLine(virshArgv(URI, 'domstate', 'win2012')));
    assert.equal(off.stdout, 'shut off\n\n');
    assert.deepEqual(parseDomstate((await h.run(commandLine(domstateArgv(URI, text('win2012'))))).stdout), { state: 'shut off', reason: 'unknown' });
  });

  it('answers dumpxml live, inactive and by UUID or id', async () => {
    const h = new DemoHypervisor();
    const live = parseDomainXml((await h.run(commandLine(dumpxmlArgv(URI, text('win2016'), { securityInfo: true })))).stdout);
    assert.equal(live.id, 1);
    assert.equal(live.graphics[0]!.port, 5900);
    assert.deepEqual(live.interfaces[0], { mac: '52:54:00:27:76:52', type: 'network', source: 'default', bridge: 'virbr0', targetDev: 'vnet0', model: 'e1000e' });
    const inactive = parseDomainXml((await h.run(commandLine(dumpxmlArgv(URI, text('win2016'), { inactive: true })))).stdout);
    assert.equal(inactive.id, undefined);
    assert.equal(inactive.graphics[0]!.port, undefined);
    const byUuid = await h.run(commandLine(virshArgv(URI, 'dumpxml', '--domain', 'CF033973-FFF1-4B6F-AFB3-E3276B4205F1')));
    assert.equal(parseDomainXml(byUuid.stdout).name, 'win2016');
    const byId = await h.run(commandLine(virshArgv(URI, 'dumpxml', '2')));
    assert.equal(parseDomainXml(byId.stdout).name, 'ubuntu-desktop');
  });

  it("looks a --domain up as virsh does: an ID, then a UUID, then a name (start skips IDs); a --network as a UUID, then a name", async () => {
    const inventory = demoInventory();
    const win = inventory.domains[0]!;
    inventory.domains.push(
      domain({ name: '1', uuid: '11111111-2222-4333-8444-000000000001', isRunning: false, mac: '52:54:00:00:01:01' }),
      domain({ name: win.uuid, uuid: '11111111-2222-4333-8444-000000000002', isRunning: false, mac: '52:54:00:00:01:02' }),
    );
    const net = inventory.networks[0]!;
    // First in the list, so a lookup that takes names first finds it.
    inventory.networks.unshift({ ...net, name: net.uuid, uuid: '11111111-2222-4333-8444-0000000000ff', bridge: 'virbr9' });
    const h = new DemoHypervisor({ inventory });
    const nameOf = async (...args: string[]) => parseDomainXml((await h.run(commandLine(virshArgv(URI, 'dumpxml', '--domain', ...args)))).stdout).name;
    assert.equal(await nameOf('1'), 'win2016', 'the ID 1 comes before the name 1');
    assert.equal(await nameOf(' +1'), 'win2016', 'as virStrToLong_i reads it');
    assert.equal(await nameOf(win.uuid), 'win2016', 'the UUID comes before a name');
    assert.equal(await nameOf(win.uuid.toUpperCase().replace(/-/g, ' ').padEnd(36)), 'win2016', 'any spelling virUUIDParse takes');
    assert.equal(await nameOf('11111111-2222-4333-8444-000000000002'), win.uuid);
    assert.equal((await h.run(commandLine(virshArgv(URI, 'start', '--domain', '1')))).stdout, "Domain '1' started\n\n", 'start looks up no ID');
    const netName = async (n: string) => parseNetworkXml((await h.run(commandLine(virshArgv(URI, 'net-dumpxml', '--network', n)))).stdout).name;
    assert.equal(await netName(net.uuid), 'default', 'a network UUID comes before a name');
    assert.equal(await netName('11111111-2222-4333-8444-0000000000ff'), net.uuid);
  });

  it("gives libvirt's own error text for a VM that does not exist", async () => {
    const h = new DemoHypervisor();
    const r = await h.run(commandLine(dumpxmlArgv(URI, text('no-such-vm'))));
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, fixture('error-domain-not-found.stderr'));
    assert.equal(virshError('dumpxml', { exitCode: r.code, stderr: r.stderr }).code, 'VM_NOT_FOUND');
    const net = await h.run(commandLine(netDhcpLeasesArgv(URI, netText('nosuchnet'))));
    assert.equal(net.stderr, fixture('error-network-not-found.stderr'));
  });

  it('refuses anything else with exit 127', async () => {
    const h = new DemoHypervisor();
    for (const line of ['rm -rf /', 'virsh list; touch pwned', 'echo $(id)', 'sh -c \'echo hi\'', 'cat /etc/shadow', 'cat -v /etc/libvirt/qemu.conf', "virsh list 'unclosed"]) {
      const r = await h.run(line);
      assert.equal(r.code, 127, line);
      assert.match(r.stderr, /^demo hypervisor: ".*" is not available in the demo\n$/);
    }
    const unknown = await h.run(commandLine(virshArgv(URI, 'undefine', '--domain', 'win2016')));
    assert.deepEqual(unknown, { code: 1, stdout: '', stderr: "error: unknown command: 'undefine'\n" });
  });

  it('takes a hostile VM name as one word and nothing else', async () => {
    const hostile = [`x'; touch pwned; echo '`, '$(touch pwned2)', '-rf', 'a b\n"c"\\'];
    const inventory = demoInventory();
    inventory.domains = hostile.map((name, i) => domain({ name, uuid: `2d0a1bee-5827-4c08-bc49-3ddb5c4aa8${String(i).padStart(2, '0')}`, vnc: { kind: 'tcp', listen: '127.0.0.1' } }));
    const h = new DemoHypervisor({ inventory });
    for (const name of hostile) {
      const r = await h.run(commandLine(domstateArgv(URI, text(name))));
      assert.deepEqual(r, { code: 0, stdout: 'running (booted)\n\n', stderr: '' }, name);
      assert.equal(parseDomainXml((await h.run(commandLine(dumpxmlArgv(URI, text(name))))).stdout).name, name);
      const missing = await h.run(commandLine(domstateArgv(URI, text(`${name}x`))));
      assert.equal(missing.stderr, `error: failed to get domain '${name}x'\n`);
    }
    const inv = assembleInventory((await inventoryOf(h)).raw);
    assert.deepEqual(
      inv.domains.map((d) => d.name),
      hostile,
    );
    assert.equal(existsSync('pwned'), false);
    assert.equal(existsSync('pwned2'), false);
  });

  it('starts a shut-off VM: it runs, gets the next free console port, and its console is served', async () => {
    const started: string[] = [];
    const h = new DemoHypervisor({
      startConsole: async (vm) => {
        started.push(vm.name);
        return { host: '127.0.0.1', port: 40000 + started.length };
      },
    });
    await h.serveConsoles();
    assert.deepEqual(started, ['win2016', 'ubuntu-desktop', 'debian12-socket', 'legacy-exposed']);
    assert.equal(h.routeTcp('127.0.0.1', 5903), undefined);
    const exec = remoteExec(h);
    await startDomain(exec, URI, uuidOf('win2012'));
    const d = await readDomain(exec, URI, uuidOf('win2012'), { addresses: true });
    assert.equal(d.state, 'running');
    assert.equal(d.id, 5);
    assert.deepEqual(d.addresses[0], { ip: '192.168.122.112', mac: '52:54:00:4c:45:eb', source: 'lease', via: 'default' });
    assert.deepEqual(vncTarget(d, 'demo-kvm'), { kind: 'tcp', host: '127.0.0.1', port: 5903 });
    assert.deepEqual(h.routeTcp('127.0.0.1', 5903), { host: '127.0.0.1', port: 40005 });
    await assert.rejects(startDomain(exec, URI, uuidOf('win2012')), (e: unknown) => isVmdeskError(e) && /already active/.test(e.message));
  });

  it('routes only its consoles: loopback for loopback listeners, the socket path for the socket VM', async () => {
    let n = 0;
    const h = new DemoHypervisor({ startConsole: async () => ({ host: '127.0.0.1', port: 41000 + n++ }) });
    await h.serveConsoles();
    assert.deepEqual(h.routeTcp('127.0.0.1', 5900), { host: '127.0.0.1', port: 41000 });
    assert.deepEqual(h.routeTcp('localhost', 5902), { host: '127.0.0.1', port: 41003 });
    assert.equal(h.routeTcp('192.168.122.1', 5900), undefined);
    assert.equal(h.routeTcp('127.0.0.1', 22), undefined);
    assert.equal(h.routeTcp('192.168.122.217', 3389), undefined);
    assert.deepEqual(h.routeUnix('/var/lib/libvirt/qemu/debian12-socket.vnc'), { host: '127.0.0.1', port: 41002 });
    assert.equal(h.routeUnix('/var/run/libvirt/libvirt-sock'), undefined);
  });

  it('answers the per-VM lookups of resolveVmTarget, neighbours, leases and socket checks', async () => {
    const h = new DemoHypervisor();
    const exec = remoteExec(h);
    assert.deepEqual(await resolveVmTarget(exec, { kind: 'vm', uri: URI, uuid: uuidOf('win2016'), vm: 'win2016', service: 'vnc' }, 'demo-kvm'), { kind: 'tcp', host: '127.0.0.1', port: 5900 });
    assert.deepEqual(await resolveVmTarget(exec, { kind: 'vm', uri: URI, uuid: uuidOf('win2016'), vm: 'win2016', service: 'rdp' }, 'demo-kvm'), { kind: 'tcp', host: '192.168.122.217', port: 3389 });
    await assert.rejects(resolveVmTarget(exec, { kind: 'vm', uri: URI, uuid: asDomainUuid('00000000-0000-4000-8000-000000000000'), vm: 'nope', service: 'vnc' }, 'demo-kvm'), (e: unknown) => isVmdeskError(e) && e.code === 'VM_NOT_FOUND');
    const neigh = parseIpNeigh((await h.run(commandLine(['ip', 'neigh', 'show']))).stdout);
    const arp = parseArpN((await h.run(commandLine(['cat', '/proc/net/arp']))).stdout);
    assert.equal(neigh.length, 4);
    assert.deepEqual(
      arp.map((a) => [a.ip, a.mac]),
      neigh.map((a) => [a.ip, a.mac]),
    );
    const leases = parseDhcpLeases((await h.run(commandLine(netDhcpLeasesArgv(URI, netText('default'), '52:54:00:27:76:52')))).stdout);
    assert.deepEqual(
      leases.map((l) => [l.ipAddress, l.prefix, l.hostname]),
      [['192.168.122.217', 24, 'win2016']],
    );
    await checkSocketAccess(exec, '/var/lib/libvirt/qemu/debian12-socket.vnc', 'demo-kvm', 'debian12-socket');
    await assert.rejects(checkSocketAccess(exec, '/root/x.sock', 'demo-kvm', 'x'), (e: unknown) => isVmdeskError(e) && e.code === 'VNC_SOCKET_DENIED');
  });
});

describe('DemoHypervisor: live and persistent definitions (vnc-listen)', () => {
  it('answers dumpxml --inactive with the persistent definition: no id, the port as defined', async () => {
    const h = new DemoHypervisor();
    const legacy = parseDomainXml((await virsh(h, dumpxmlArgv(URI, text('legacy-exposed'), { inactive: true, securityInfo: true }))).stdout);
    assert.equal(legacy.id, undefined);
    assert.deepEqual([legacy.graphics[0]!.port, legacy.graphics[0]!.autoport, legacy.graphics[0]!.listens], [5902, false, [{ type: 'address', address: '0.0.0.0' }]]);
    const win = (await virsh(h, dumpxmlArgv(URI, text('win2016'), { inactive: true }))).stdout;
    assert.match(win, /<graphics type='vnc' port='-1' autoport='yes' listen='127\.0\.0\.1'>/);
    assert.doesNotMatch(win, /<domain type='kvm' id=|<alias |portid=/);
  });

  it('moves the exposed VM to loopback with a restart: backup, define, shutdown, start; its console route moves', async () => {
    const { h, exec, stopped } = recordingHypervisor();
    await h.serveConsoles();
    const original = (await virsh(h, dumpxmlArgv(URI, text('legacy-exposed'), { inactive: true, securityInfo: true }))).stdout;
    const progress: string[] = [];
    const c = await changeListen(exec, URI, uuidOf('legacy-exposed'), '127.0.0.1', { restart: true, force: false, shutdownTimeoutMs: 10_000, progress: (l) => progress.push(l) });
    assert.deepEqual([c.vm, c.before, c.isChanged, c.isRunning, c.isRestarted], ['legacy-exposed', ['0.0.0.0'], true, true, true]);
    assert.match(c.backupPath!, /^\/home\/demo\/\.local\/state\/vmdesk\/backups\/6ede338f-c252-440e-be84-ab58e1595951-\d{8}T\d{6}Z-[0-9a-f]{8}\.xml$/);
    assert.equal(c.backupXml, original);
    assert.deepEqual(await h.run(commandLine(['cat', c.backupPath!])), { code: 0, stdout: original, stderr: '' });
    assert.equal((await h.run(commandLine(['test', '-r', c.backupPath!]))).code, 0);
    assert.deepEqual(progress, ['shutting legacy-exposed down (waiting up to 10 s)', 'starting legacy-exposed']);
    assert.deepEqual(stopped, ['legacy-exposed']);
    const d = await readDomain(exec, URI, uuidOf('legacy-exposed'), { addresses: false });
    assert.deepEqual([d.state, d.id, isExposed(d.graphics[0]!)], ['running', 5, false]);
    assert.deepEqual(vncTarget(d, 'demo-kvm'), { kind: 'tcp', host: '127.0.0.1', port: 5902 });
    assert.deepEqual(h.routeTcp('127.0.0.1', 5902), { host: '127.0.0.1', port: 40005 });
    assert.equal(h.routeTcp('0.0.0.0', 5902), undefined);
    assert.equal((await virsh(h, domstateArgv(URI, text('legacy-exposed')))).stdout, 'running (booted)\n\n');
    // Nothing but the listen address changed: the password-less console, the fixed port and the rest of the definition.
    const after = (await virsh(h, dumpxmlArgv(URI, text('legacy-exposed'), { inactive: true, securityInfo: true }))).stdout;
    assert.equal(after, original.replace(/0\.0\.0\.0/g, '127.0.0.1'));
  });

  it('keeps a running VM on its live listen until it restarts when not asked to restart it', async () => {
    const { h, exec } = recordingHypervisor();
    await h.serveConsoles();
    const c = await changeListen(exec, URI, uuidOf('legacy-exposed'), '127.0.0.1', { restart: false, force: false });
    assert.deepEqual([c.isChanged, c.isRestarted], [true, false]);
    const listen = async (inactive: boolean) => parseDomainXml((await virsh(h, dumpxmlArgv(URI, text('legacy-exposed'), { inactive }))).stdout).graphics[0]!.listens[0]!.address;
    assert.deepEqual([await listen(false), await listen(true)], ['0.0.0.0', '127.0.0.1']);
    assert.deepEqual(h.routeTcp('0.0.0.0', 5902), { host: '127.0.0.1', port: 40004 });
    assert.equal((await changeListen(exec, URI, uuidOf('legacy-exposed'), '127.0.0.1', { restart: false, force: false })).isChanged, false);
    assert.deepEqual(await virsh(h, destroyArgv(URI, text('legacy-exposed'))), { code: 0, stdout: "Domain 'legacy-exposed' destroyed\n\n", stderr: '' });
    assert.equal((await virsh(h, domstateArgv(URI, text('legacy-exposed')))).stdout, 'shut off (destroyed)\n\n');
    assert.equal(h.routeTcp('127.0.0.1', 5902), undefined);
    assert.deepEqual(await virsh(h, startArgv(URI, text('legacy-exposed'))), { code: 0, stdout: "Domain 'legacy-exposed' started\n\n", stderr: '' });
    assert.deepEqual([await listen(false), await listen(true)], ['127.0.0.1', '127.0.0.1']);
    assert.deepEqual(h.routeTcp('127.0.0.1', 5902), { host: '127.0.0.1', port: 40005 });
    assert.equal(h.routeTcp('0.0.0.0', 5902), undefined);
  });

  it('shuts a VM down after a moment, and says so in libvirt\'s words', async () => {
    const { h } = recordingHypervisor();
    assert.deepEqual(await virsh(h, shutdownArgv(URI, text('win2016'))), { code: 0, stdout: "Domain 'win2016' is being shutdown\n\n", stderr: '' });
    assert.equal((await virsh(h, domstateArgv(URI, text('win2016')))).stdout, 'running (booted)\n\n');
    await sleep(60);
    assert.equal((await virsh(h, domstateArgv(URI, text('win2016')))).stdout, 'shut off (shutdown)\n\n');
    assert.deepEqual(await virsh(h, shutdownArgv(URI, text('win2016'))), {
      code: 1,
      stdout: '',
      stderr: "error: Failed to shutdown domain 'win2016'\nerror: Requested operation is not valid: domain is not running\n",
    });
    assert.equal((await virsh(h, destroyArgv(URI, text('win2012')))).stderr, "error: Failed to destroy domain 'win2012'\nerror: Requested operation is not valid: domain is not running\n");
    assert.equal((await virsh(h, virshArgv(URI, 'shutdown', '--domain', 'ubuntu-desktop', '--mode', 'agent'))).code, 1);
  });

  it('times out on a guest that ignores the power button, and powers it off only with --force', async () => {
    const inventory = demoInventory();
    inventory.domains.find((d) => d.name === 'legacy-exposed')!.ignoresShutdown = true;
    const { h, exec } = recordingHypervisor({ inventory });
    await assert.rejects(
      changeListen(exec, URI, uuidOf('legacy-exposed'), '127.0.0.1', { restart: true, force: false, shutdownTimeoutMs: 200 }),
      (e: unknown) => isVmdeskError(e) && e.code === 'VM_SHUTDOWN_TIMEOUT',
    );
    assert.equal((await virsh(h, domstateArgv(URI, text('legacy-exposed')))).stdout, 'running (booted)\n\n');
    const c = await changeListen(exec, URI, uuidOf('legacy-exposed'), '127.0.0.1', { restart: true, force: true, shutdownTimeoutMs: 200 });
    assert.deepEqual([c.isChanged, c.isRestarted], [false, true]);
    assert.equal(parseDomainXml((await virsh(h, dumpxmlArgv(URI, text('legacy-exposed')))).stdout).graphics[0]!.listens[0]!.address, '127.0.0.1');
  });

  it("refuses definitions libvirt would refuse, with libvirt's errors, and changes nothing", async () => {
    const h = new DemoHypervisor();
    const original = (await virsh(h, dumpxmlArgv(URI, text('win2016'), { inactive: true, securityInfo: true }))).stdout;
    const define = (xml: string) => h.run(defineLine(), xml);
    const cases: [string, RegExp][] = [
      [original.replace('<name>win2016</name>', '<name>win2016-copy</name>'), /^error: operation failed: domain 'win2016' is already defined with uuid cf033973-fff1-4b6f-afb3-e3276b4205f1$/m],
      [original.replace('cf033973-fff1-4b6f-afb3-e3276b4205f1', '11111111-2222-4333-8444-555555555555'), /^error: operation failed: domain 'win2016' already exists with uuid cf033973-fff1-4b6f-afb3-e3276b4205f1$/m],
      [original.replace(/<uuid>.*<\/uuid>\n/, ''), /^error: operation failed: domain 'win2016' already exists with uuid cf033973/m],
      [original.replace("<listen type='address' address='127.0.0.1'/>", "<listen type='address' address='0.0.0.0'/>"), /^error: XML error: graphics 'listen' attribute '127\.0\.0\.1' must match 'address' attribute of first listen element \(found '0\.0\.0\.0'\)$/m],
      [original.replace('</devices>', '</device>'), /^error: \(domain_definition\):\d+: /m],
      ['', /^error: \(domain_definition\):1: Document is empty$/m],
      ["<network><name>x</name></network>", /^error: XML error: expecting root element of 'domain', not 'network'$/m],
      [original.replace(/<memory unit='KiB'>\d+<\/memory>\n/, ''), /^error: XML document failed to validate against schema: Unable to validate doc against \/usr\/share\/libvirt\/schemas\/domain\.rng\nElement domain failed to validate content$/m],
      [original.replace("<graphics type='vnc'", "<graphics type='spice'"), /^error: this function is not supported by the connection driver: the vmdesk demo hypervisor models exactly one VNC console/m],
    ];
    for (const [xml, message] of cases) {
      const r = await define(xml);
      assert.equal(r.code, 1, String(message));
      assert.match(r.stderr, /^error: Failed to define domain from \/tmp\/tmp\.[A-Za-z0-9]{10}\n/);
      assert.match(r.stderr, message);
      assert.equal(virshError('define', { exitCode: r.code, stderr: r.stderr }).code, 'LIBVIRT_COMMAND_FAILED');
    }
    assert.equal((await virsh(h, dumpxmlArgv(URI, text('win2016'), { inactive: true, securityInfo: true }))).stdout, original);
    // The temporary file is gone whatever happened.
    assert.deepEqual(await virsh(h, defineArgv(URI, '/tmp/tmp.gone')), { code: 1, stdout: '', stderr: "error: Failed to open file '/tmp/tmp.gone': No such file or directory\n" });
  });

  it('defines a new domain from the XML alone, shut off, and keeps a console password given with --security-info', async () => {
    const h = new DemoHypervisor();
    const xml = (await virsh(h, dumpxmlArgv(URI, text('win2012'), { inactive: true })))
      .stdout.replace('<name>win2012</name>', '<name>win2022</name>')
      .replace(/<uuid>.*<\/uuid>/, '<uuid>0f6cdad0-dce8-4925-8f48-e8f80c639a98</uuid>')
      .replace("<mac address='52:54:00:4c:45:eb'/>", "<mac address='52:54:00:4c:45:ec'/>")
      .replace("<graphics type='vnc'", "<graphics type='vnc' passwd='Demo-pw1'");
    const r = await h.run(defineLine(), xml);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Domain 'win2022' defined from \/tmp\/tmp\.[A-Za-z0-9]{10}\n\n$/);
    assert.equal((await virsh(h, domstateArgv(URI, text('win2022')))).stdout, 'shut off (unknown)\n\n');
    assert.match((await virsh(h, dumpxmlArgv(URI, text('win2022'), { securityInfo: true }))).stdout, / passwd='Demo-pw1'/);
    assert.doesNotMatch((await virsh(h, dumpxmlArgv(URI, text('win2022')))).stdout, /passwd=/);
    await virsh(h, startArgv(URI, text('win2022')));
    const leases = parseDhcpLeases((await virsh(h, netDhcpLeasesArgv(URI, netText('default'), '52:54:00:4c:45:ec'))).stdout);
    assert.deepEqual(leases.map((l) => [l.hostname, l.ipAddress]), [['win2022', '192.168.122.2']]);
  });

  it('applies an edit made by setGraphicsListen to a shut-off VM at its next start', async () => {
    const h = new DemoHypervisor();
    const xml = (await virsh(h, dumpxmlArgv(URI, text('win2012'), { inactive: true, securityInfo: true }))).stdout;
    assert.equal((await h.run(defineLine(), setGraphicsListen(xml, '::1').xml)).code, 0);
    await virsh(h, startArgv(URI, text('win2012')));
    const d = parseDomainXml((await virsh(h, dumpxmlArgv(URI, text('win2012')))).stdout);
    assert.deepEqual(d.graphics[0]!.listens, [{ type: 'address', address: '::1' }]);
    assert.equal((await virsh(h, virshArgv(URI, 'domdisplay', '--domain', 'win2012'))).stdout, 'vnc://[::1]:3\n');
  });
});

describe('DemoHypervisor: DHCP reservations (pin-ip)', () => {
  const hostsOf = async (h: DemoHypervisor, inactive = false) =>
    parseNetworkXml((await virsh(h, [...netDumpxmlArgv(URI, netText('default')), ...(inactive ? ['--inactive'] : [])])).stdout).addresses[0]!.dhcp!.hosts;

  it("answers net-info in virsh's layout", async () => {
    const r = await virsh(new DemoHypervisor(), netInfoArgv(URI, netText('default')));
    assert.equal(
      r.stdout,
      'Name:           default\nUUID:           e4851092-ba39-4add-84d1-3880f13f7421\nActive:         yes\nPersistent:     yes\nAutostart:      yes\nBridge:         virbr0\n\n',
    );
  });

  it('pins, re-pins and unpins a guest address with pinIp: add, none, modify, delete, none', async () => {
    const h = new DemoHypervisor();
    const exec = remoteExec(h);
    const pin = (opts: { ip?: string; remove?: boolean }) => pinIp(exec, URI, uuidOf('ubuntu-desktop'), 'demo-kvm', { remove: false, ...opts }).then((r) => [r.action, r.ip, r.isLive]);
    assert.deepEqual(await pin({}), ['add', '192.168.122.38', true]);
    assert.deepEqual(await hostsOf(h), [
      { mac: '52:54:00:27:76:52', name: 'win2016', ip: '192.168.122.217' },
      { mac: '52:54:00:b8:72:16', name: 'ubuntu-desktop', ip: '192.168.122.38' },
    ]);
    assert.deepEqual(await hostsOf(h, true), await hostsOf(h));
    assert.deepEqual(await pin({}), ['none', '192.168.122.38', true]);
    assert.deepEqual(await pin({ ip: '192.168.122.150' }), ['modify', '192.168.122.150', true]);
    const inv = await readInventory(exec, URI);
    assert.equal(pinnedIps(inv.networks[0]!).get('52:54:00:b8:72:16'), '192.168.122.150');
    assert.deepEqual(await pin({ remove: true }), ['delete', undefined, true]);
    assert.deepEqual(await pin({ remove: true }), ['none', undefined, true]);
    assert.deepEqual(await hostsOf(h), [{ mac: '52:54:00:27:76:52', name: 'win2016', ip: '192.168.122.217' }]);
  });

  it('gives a guest its reserved address at its next start', async () => {
    const h = new DemoHypervisor();
    const exec = remoteExec(h);
    await pinIp(exec, URI, uuidOf('ubuntu-desktop'), 'demo-kvm', { ip: '192.168.122.150', remove: false });
    const leased = async () => parseDhcpLeases((await virsh(h, netDhcpLeasesArgv(URI, netText('default'), '52:54:00:b8:72:16'))).stdout).map((l) => l.ipAddress);
    assert.deepEqual(await leased(), ['192.168.122.38']);
    await virsh(h, destroyArgv(URI, text('ubuntu-desktop')));
    await virsh(h, startArgv(URI, text('ubuntu-desktop')));
    assert.deepEqual(await leased(), ['192.168.122.150']);
  });

  it("refuses what libvirt refuses, in libvirt's words", async () => {
    const h = new DemoHypervisor();
    const update = (command: 'add' | 'modify' | 'delete', xml: string, live = true) => virsh(h, netUpdateDhcpHostArgv(URI, netText('default'), command, xml, { live }));
    const failed = (why: string) => ({ code: 1, stdout: '', stderr: `error: Failed to update network default\nerror: ${why}\n` });
    assert.deepEqual(
      await update('add', "<host mac='52:54:00:b8:72:16' ip='192.168.122.217'/>"),
      failed(`Requested operation is not valid: there is an existing dhcp host entry in network 'default' that matches "<host mac='52:54:00:b8:72:16' name='(null)' ip='192.168.122.217'/>"`),
    );
    assert.deepEqual(
      await update('add', "<host mac='52:54:00:27:76:52' name='other' ip='192.168.122.9'/>"),
      failed(`Requested operation is not valid: there is an existing dhcp host entry in network 'default' that matches "<host mac='52:54:00:27:76:52' name='other' ip='192.168.122.9'/>"`),
    );
    assert.deepEqual(await update('delete', "<host mac='52:54:00:b8:72:16'/>"), failed("Requested operation is not valid: couldn't locate a matching dhcp host entry in network 'default'"));
    assert.deepEqual(
      await update('modify', "<host mac='52:54:00:b8:72:16' ip='192.168.122.9'/>"),
      failed(`Requested operation is not valid: couldn't locate an existing dhcp host entry with "mac='52:54:00:b8:72:16'" "name='(null)'" "ip='192.168.122.9'" in network 'default'`),
    );
    assert.deepEqual(await update('add', "<host mac='52:54:00:b8:72:16'/>"), failed("XML error: Missing IP address in static host definition for network 'default'"));
    assert.deepEqual(await update('add', "<host ip='192.168.122.9'/>"), failed("XML error: Static host definition in IPv4 network 'default' must have mac or name attribute"));
    assert.deepEqual(await update('add', "<host mac='01:54:00:b8:72:16' ip='192.168.122.9'/>"), failed("XML error: expected unicast mac address, found multicast '01:54:00:b8:72:16' in network 'default'"));
    assert.deepEqual(await update('add', "<range start='192.168.122.2' end='192.168.122.9'/>"), failed("XML error: unexpected element <range>, expecting <host>, while updating network 'default'"));
    assert.deepEqual(await virsh(h, virshArgv(URI, 'net-update', '--network', 'default', '--command', 'append', '--section', 'ip-dhcp-host', '--xml', '<host/>')), {
      code: 1,
      stdout: '',
      stderr: "error: unrecognized command name 'append'\n",
    });
    assert.deepEqual(await hostsOf(h), [{ mac: '52:54:00:27:76:52', name: 'win2016', ip: '192.168.122.217' }]);
  });

  it('changes only the persistent definition with --config alone, as libvirt does', async () => {
    const h = new DemoHypervisor();
    const r = await virsh(h, netUpdateDhcpHostArgv(URI, netText('default'), 'add', "<host mac='52:54:00:b8:72:16' ip='192.168.122.38'/>", { live: false }));
    assert.deepEqual(r, { code: 0, stdout: 'Updated network default persistent config\n', stderr: '' });
    assert.equal((await hostsOf(h)).length, 1);
    assert.equal((await hostsOf(h, true)).length, 2);
    const both = await virsh(h, netUpdateDhcpHostArgv(URI, netText('default'), 'delete', "<host mac='52:54:00:27:76:52'/>", { live: true }));
    assert.equal(both.stdout, 'Updated network default persistent config and live state\n');
  });
});

describe('DemoHypervisor: what vmdesk audit reads', () => {
  it('lists a libvirt-started QEMU per running VM and the hand-started one, for the real parser', async () => {
    const h = new DemoHypervisor();
    const r = await h.run(QEMU_PROCESS_SCRIPT);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^P 1873 1000 demo\n( [0-9a-f]{2}){16}\n/);
    assert.ok(r.stdout.endsWith('\nE\n'));
    const ps = parseQemuProcesses(r.stdout);
    assert.deepEqual(
      ps.map((p) => [p.pid, p.user, p.name, p.uuid, p.vnc?.listen, p.vnc?.port]),
      [
        [1873, 'demo', 'scratch', undefined, '0.0.0.0', 5907],
        [2214, 'libvirt-qemu', 'win2016', 'cf033973-fff1-4b6f-afb3-e3276b4205f1', '127.0.0.1', 5900],
        [2251, 'libvirt-qemu', 'ubuntu-desktop', '97200831-9c83-4f63-a6a8-529cbc85d4d3', '127.0.0.1', 5901],
        [2288, 'libvirt-qemu', 'debian12-socket', 'a754d6da-243f-423c-97ef-6ec7836231b0', 'unix:/var/lib/libvirt/qemu/debian12-socket.vnc', undefined],
        [2325, 'libvirt-qemu', 'legacy-exposed', '6ede338f-c252-440e-be84-ab58e1595951', '0.0.0.0', 5902],
      ],
    );
  });

  it("serves a qemu.conf that keeps VNC on loopback without TLS, and finds the two exposed consoles", async () => {
    const h = new DemoHypervisor();
    const exec = remoteExec(h);
    const text = await readQemuConf(exec);
    const conf = parseQemuConf(text!);
    assert.deepEqual([conf.vncListen, conf.vncTls, conf.vncPasswordSet, conf.syntaxError], ['127.0.0.1', undefined, undefined, undefined]);
    const report = auditHost('demo-kvm', await readInventory(exec, URI), parseQemuProcesses((await exec(QEMU_PROCESS_SCRIPT)).stdout.toString()), conf);
    assert.deepEqual(
      report.findings.map((f) => [f.severity, f.vm ?? f.pid, f.listen, f.fix]),
      [
        ['high', 'legacy-exposed', '0.0.0.0:5902', 'vmdesk vnc-listen demo-kvm/legacy-exposed 127.0.0.1 --restart'],
        ['high', 1873, '0.0.0.0:5907', 'stop PID 1873 (qemu-system-x86_64) and start it again with -vnc 127.0.0.1:7'],
      ],
    );
    assert.equal(report.consoles.filter((c) => c.isManaged).length, 5);
  });
});

describe('splitCommandLine', () => {
  it('reads back every word quoteArg writes', () => {
    const words = ['plain', '', "it's", `'\\''`, '$(x) `y` ;|&<>*?[#~', 'a\nb\tc', '"double"', '\\'];
    assert.deepEqual(splitCommandLine(commandLine(words)), [words]);
    assert.deepEqual(splitCommandLine(`${commandLine(['test', '-w', 'p'])} && ${commandLine(['test', '-r', 'p'])}`), [
      ['test', '-w', 'p'],
      ['test', '-r', 'p'],
    ]);
    assert.deepEqual(splitCommandLine(`a "b c" d\\ e "\\$x"`), [['a', 'b c', 'd e', '$x']]);
  });

  it('gives up on anything a shell would interpret', () => {
    for (const line of ['a; b', 'a | b', 'a & b', 'a && ', 'a > f', 'echo $HOME', 'echo `id`', 'echo "$HOME"', 'ls *', '# c', '~/x', 'a\nb', "'open", '(a)']) {
      assert.equal(splitCommandLine(line), undefined, line);
    }
  });
});
