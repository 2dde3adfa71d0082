import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { parseDomstate, parseUuidList } from '../libvirt/domain-list.js';
import { isExposed, parseDomainXml } from '../libvirt/domain-xml.js';
import { assembleInventory } from '../libvirt/inventory.js';
import { buildInventoryScript, newBoundary, parseInventoryOutput } from '../libvirt/inventory-script.js';
import { parseArpN, parseDhcpLeases, parseIpNeigh } from '../libvirt/leases.js';
import { checkSocketAccess, readDomain, resolveVmTarget, startDomain, type RemoteExec } from '../libvirt/remote.js';
import { commandLine, quoteArg } from '../libvirt/shell-quote.js';
import { domstateArgv, dumpxmlArgv, netDhcpLeasesArgv, virshArgv } from '../libvirt/virsh-argv.js';
import { virshError } from '../libvirt/virsh-errors.js';
import { vncTarget } from '../libvirt/vm-target.js';
import { demoInventory, type DemoDomain } from './demo-inventory.js';
import { DemoHypervisor, splitCommandLine } from './hypervisor.js';

const URI = 'qemu:///system';
const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

function remoteExec(h: DemoHypervisor): RemoteExec {
  return async (command) => {
    const r = await h.run(command);
    return { code: r.code, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr) };
  };
}

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
    const plain = await h.run(commandLine(dumpxmlArgv(URI, 'rhel8')));
    assert.ok(!plain.stdout.includes('passwd='));
    const secure = await h.run(commandLine(dumpxmlArgv(URI, 'rhel8', { securityInfo: true })));
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
    const r = await h.run(commandLine(domstateArgv(URI, 'win2016')));
    assert.deepEqual(r, { code: 0, stdout: 'running (booted)\n\n', stderr: '' });
    const off = await h.run(commandLine(virshArgv(URI, 'domstate', 'win2012')));
    assert.equal(off.stdout, 'shut off\n\n');
    assert.deepEqual(parseDomstate((await h.run(commandLine(domstateArgv(URI, 'win2012')))).stdout), { state: 'shut off', reason: 'unknown' });
  });

  it('answers dumpxml live, inactive and by UUID or id', async () => {
    const h = new DemoHypervisor();
    const live = parseDomainXml((await h.run(commandLine(dumpxmlArgv(URI, 'win2016', { securityInfo: true })))).stdout);
    assert.equal(live.id, 1);
    assert.equal(live.graphics[0]!.port, 5900);
    assert.deepEqual(live.interfaces[0], { mac: '52:54:00:27:76:52', type: 'network', source: 'default', bridge: 'virbr0', targetDev: 'vnet0', model: 'e1000e' });
    const inactive = parseDomainXml((await h.run(commandLine(dumpxmlArgv(URI, 'win2016', { inactive: true })))).stdout);
    assert.equal(inactive.id, undefined);
    assert.equal(inactive.graphics[0]!.port, undefined);
    const byUuid = await h.run(commandLine(virshArgv(URI, 'dumpxml', '--domain', 'CF033973-FFF1-4B6F-AFB3-E3276B4205F1')));
    assert.equal(parseDomainXml(byUuid.stdout).name, 'win2016');
    const byId = await h.run(commandLine(virshArgv(URI, 'dumpxml', '2')));
    assert.equal(parseDomainXml(byId.stdout).name, 'ubuntu-desktop');
  });

  it("gives libvirt's own error text for a VM that does not exist", async () => {
    const h = new DemoHypervisor();
    const r = await h.run(commandLine(dumpxmlArgv(URI, 'no-such-vm')));
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, fixture('error-domain-not-found.stderr'));
    assert.equal(virshError('dumpxml', { exitCode: r.code, stderr: r.stderr }).code, 'VM_NOT_FOUND');
    const net = await h.run(commandLine(netDhcpLeasesArgv(URI, 'nosuchnet')));
    assert.equal(net.stderr, fixture('error-network-not-found.stderr'));
  });

  it('refuses anything else with exit 127', async () => {
    const h = new DemoHypervisor();
    for (const line of ['rm -rf /', 'virsh list; touch pwned', 'echo $(id)', 'sh -c \'echo hi\'', 'cat /etc/shadow', "virsh list 'unclosed"]) {
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
      const r = await h.run(commandLine(domstateArgv(URI, name)));
      assert.deepEqual(r, { code: 0, stdout: 'running (booted)\n\n', stderr: '' }, name);
      assert.equal(parseDomainXml((await h.run(commandLine(dumpxmlArgv(URI, name)))).stdout).name, name);
      const missing = await h.run(commandLine(domstateArgv(URI, `${name}x`)));
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
    await startDomain(exec, URI, 'win2012');
    const d = await readDomain(exec, URI, 'win2012', { addresses: true });
    assert.equal(d.state, 'running');
    assert.equal(d.id, 5);
    assert.deepEqual(d.addresses[0], { ip: '192.168.122.112', mac: '52:54:00:4c:45:eb', source: 'lease', via: 'default' });
    assert.deepEqual(vncTarget(d, 'demo-kvm'), { kind: 'tcp', host: '127.0.0.1', port: 5903 });
    assert.deepEqual(h.routeTcp('127.0.0.1', 5903), { host: '127.0.0.1', port: 40005 });
    await assert.rejects(startDomain(exec, URI, 'win2012'), (e: unknown) => isVmdeskError(e) && /already active/.test(e.message));
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
    assert.deepEqual(await resolveVmTarget(exec, { kind: 'vm', uri: URI, vm: 'win2016', service: 'vnc' }, 'demo-kvm'), { kind: 'tcp', host: '127.0.0.1', port: 5900 });
    assert.deepEqual(await resolveVmTarget(exec, { kind: 'vm', uri: URI, vm: 'win2016', service: 'rdp' }, 'demo-kvm'), { kind: 'tcp', host: '192.168.122.217', port: 3389 });
    await assert.rejects(resolveVmTarget(exec, { kind: 'vm', uri: URI, vm: 'nope', service: 'vnc' }, 'demo-kvm'), (e: unknown) => isVmdeskError(e) && e.code === 'VM_NOT_FOUND');
    const neigh = parseIpNeigh((await h.run(commandLine(['ip', 'neigh', 'show']))).stdout);
    const arp = parseArpN((await h.run(commandLine(['cat', '/proc/net/arp']))).stdout);
    assert.equal(neigh.length, 4);
    assert.deepEqual(
      arp.map((a) => [a.ip, a.mac]),
      neigh.map((a) => [a.ip, a.mac]),
    );
    const leases = parseDhcpLeases((await h.run(commandLine(netDhcpLeasesArgv(URI, 'default', '52:54:00:27:76:52')))).stdout);
    assert.deepEqual(
      leases.map((l) => [l.ipAddress, l.prefix, l.hostname]),
      [['192.168.122.217', 24, 'win2016']],
    );
    await checkSocketAccess(exec, '/var/lib/libvirt/qemu/debian12-socket.vnc', 'demo-kvm', 'debian12-socket');
    await assert.rejects(checkSocketAccess(exec, '/root/x.sock', 'demo-kvm', 'x'), (e: unknown) => isVmdeskError(e) && e.code === 'VNC_SOCKET_DENIED');
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
