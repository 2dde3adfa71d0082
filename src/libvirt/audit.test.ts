import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { auditHost } from './audit.js';
import { asDomainUuid } from './domain-list.js';
import { parseDomainXml } from './domain-xml.js';
import { assembleInventory, type Inventory, type InventoryDomain, type InventoryState } from './inventory.js';
import { parseInventoryOutput } from './inventory-script.js';
import { parseQemuConf } from './qemu-conf.js';
import { parseQemuArgv, parseQemuProcesses, type QemuProcess } from './qemu-processes.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

const labInventory = (): Inventory => assembleInventory(parseInventoryOutput(fixture('inventory-labuser.txt'), fixture('inventory-labuser.boundary').trim()));

/** An inventory of dumpxml fixtures, as read by a user with (or without) --security-info. */
function inventoryOf(domains: [file: string, state: InventoryState][], arePasswordsKnown = true): Inventory {
  return {
    domains: domains.map(([file, state]): InventoryDomain => {
      const info = parseDomainXml(fixture(file));
      return { uuid: asDomainUuid(info.uuid), name: info.name, state, graphics: info.graphics, interfaces: info.interfaces, arePasswordsKnown, addresses: [] };
    }),
    networks: [],
    neighbours: [],
    isComplete: true,
  };
}

const qemu = (pid: number, ...args: string[]): QemuProcess => ({ pid, user: 'root', ...parseQemuArgv(['/usr/bin/qemu-system-x86_64', ...args]) });

describe('auditHost on the lab: inventory, process list and qemu.conf captured from it', () => {
  const r = auditHost('lab-hv', labInventory(), parseQemuProcesses(fixture('qemu-processes-lab.txt')), parseQemuConf(fixture('qemu.conf-lab')));

  it('one console per libvirt graphics (running or not) and per hand-started QEMU console; libvirt-started QEMUs are not doubled', () => {
    assert.deepEqual(
      r.consoles.map((c) => [c.vm ?? `pid ${c.pid}`, c.kind, c.isExposed, c.isManaged]),
      [
        ['win2016', 'vnc', false, true],
        ['win2019', 'vnc', true, true],
        ['rhel8', 'vnc', false, true],
        ['debian12', 'vnc', false, true],
        [`x'; touch pwned; echo '`, 'vnc', false, true],
        ['$(touch pwned2)', 'vnc', true, true],
        ['-rf', 'spice', false, true],
        ['win2012', 'vnc', false, true],
        ['pid 7795', 'vnc', true, false],
        ['pid 7796', 'vnc', true, false],
        ['pid 7796', 'vnc', true, false],
        ['pid 7796', 'spice', true, false],
      ],
    );
    const byVm = new Map(r.consoles.filter((c) => c.vm).map((c) => [c.vm, c]));
    assert.equal(byVm.get('rhel8')!.hasPassword, true);
    assert.equal(byVm.get('rhel8')!.hasTls, false);
    assert.match(byVm.get('debian12')!.socket ?? '', /\.sock$/);
    assert.deepEqual(byVm.get('debian12')!.listen, []);
    // win2012 (shut off) has an address-less listen: qemu.conf's vnc_listen decides, 127.0.0.1 in the lab.
    assert.deepEqual(byVm.get('win2012')!.listen, ['127.0.0.1']);
    assert.equal(r.consoles.find((c) => c.isWebsocket)?.port, 5708);
    assert.equal(r.consoles.find((c) => c.pid === 7796)?.processName, 'hand,made');
  });

  it('findings: high first, with the exact fix; the hostile name is shell-quoted', () => {
    assert.deepEqual(
      r.findings.map((f) => [f.severity, f.vm ?? f.pid, f.kind, f.listen, f.fix]),
      [
        ['high', 'win2019', 'vnc', '0.0.0.0:5901', 'vmdesk vnc-listen lab-hv/win2019 127.0.0.1 --restart'],
        ['high', '$(touch pwned2)', 'vnc', '192.168.122.1:5903', "vmdesk vnc-listen 'lab-hv/$(touch pwned2)' 127.0.0.1 --restart"],
        ['high', 7795, 'vnc', '0.0.0.0:5907', 'stop PID 7795 (qemu-system-x86_64) and start it again with -vnc 127.0.0.1:7'],
        ['high', 7796, 'spice', '0.0.0.0:5931', 'stop PID 7796 (qemu-system-x86_64) and start it again with -spice port=5931,addr=127.0.0.1'],
        ['medium', 7796, 'vnc', '[::]:5908', 'stop PID 7796 (qemu-system-x86_64) and start it again with -vnc 127.0.0.1:8'],
        ['medium', 7796, 'vnc', '[::]:5708', 'stop PID 7796 (qemu-system-x86_64) and start it again with -vnc 127.0.0.1:8,websocket=127.0.0.1:5708'],
      ],
    );
    assert.ok(r.findings.every((f) => f.host === 'lab-hv'));
    assert.match(r.findings[0]!.message, /without a password/);
    assert.match(r.findings[4]!.message, /8 characters/);
    assert.match(r.findings[5]!.message, /WebSocket/);
  });
});

describe('auditHost with qemu.conf settings', () => {
  const inv = inventoryOf([
    ['dumpxml-win2012-shutoff.xml', 'shut off'],
    ['dumpxml-win2019-exposed.xml', 'running'],
  ]);

  it('a shut-off VM whose address-less listen takes vnc_listen = "0.0.0.0" is a finding, fixed without --restart', () => {
    const r = auditHost('hv', inv, [], parseQemuConf('vnc_listen = "0.0.0.0"\n'));
    const f = r.findings.find((x) => x.vm === 'win2012')!;
    assert.equal(f.severity, 'high');
    assert.equal(f.listen, '0.0.0.0');
    assert.match(f.message, /shut off and will listen on 0\.0\.0\.0 when started/);
    assert.equal(f.fix, 'vmdesk vnc-listen hv/win2012 127.0.0.1');
  });

  it('vnc_password makes it medium, vnc_tls low', () => {
    assert.deepEqual(
      auditHost('hv', inv, [], parseQemuConf('vnc_password = "x"\n')).findings.map((f) => f.severity),
      ['medium'],
    );
    assert.deepEqual(
      auditHost('hv', inv, [], parseQemuConf('vnc_password = "x"\nvnc_tls = 1\n')).findings.map((f) => f.severity),
      ['low'],
    );
  });

  it('vnc_auto_unix_socket turns an address-less listen into a socket', () => {
    const c = auditHost('hv', inv, [], parseQemuConf(fixture('qemu.conf-libvirt9-all-keys'))).consoles.find((x) => x.vm === 'win2012')!;
    assert.deepEqual(c.listen, []);
    assert.equal(c.isExposed, false);
    assert.match(c.note ?? '', /auto_unix_socket/);
  });

  it('qemu.conf unreadable: TLS unknown, an address-less listen unknown (noted, not guessed)', () => {
    const r = auditHost('hv', inv, [], undefined);
    const win2012 = r.consoles.find((x) => x.vm === 'win2012')!;
    assert.deepEqual(win2012.listen, []);
    assert.match(win2012.note ?? '', /could not be read/);
    assert.equal(r.consoles.find((x) => x.vm === 'win2019')!.hasTls, null);
    assert.equal(r.findings.length, 1);
  });
});

describe('auditHost edge cases', () => {
  it('read-only libvirt access: an exposed console with an unknown password is high, and says why', () => {
    const r = auditHost('hv', inventoryOf([['dumpxml-win2019-exposed.xml', 'running']], false), [], {});
    assert.equal(r.consoles[0]!.hasPassword, null);
    assert.equal(r.findings[0]!.severity, 'high');
    assert.match(r.findings[0]!.message, /could not be checked/);
  });

  it('a network listen without a resolved address counts as exposed', () => {
    const inv = inventoryOf([['dumpxml-win2019-exposed.xml', 'shut off']]);
    inv.domains[0]!.graphics = [{ type: 'vnc', autoport: true, listens: [{ type: 'network', network: 'lan' }], hasPassword: true }];
    const r = auditHost('hv', inv, [], {});
    assert.deepEqual(r.consoles[0]!.listen, ['network:lan']);
    assert.equal(r.findings[0]!.severity, 'medium');
  });

  it('SPICE with password and a TLS port under spice_tls = 1 is low', () => {
    const inv = inventoryOf([['dumpxml-dash-spice-shutoff.xml', 'shut off']]);
    inv.domains[0]!.graphics = [{ type: 'spice', autoport: false, port: 5930, tlsPort: 5931, listens: [{ type: 'address', address: '::' }], hasPassword: true }];
    const r = auditHost('hv', inv, [], { spiceTls: true });
    assert.equal(r.consoles[0]!.hasTls, true);
    assert.deepEqual(
      r.findings.map((f) => [f.severity, f.listen, f.fix]),
      [['low', '[::]:5930', 'vmdesk vnc-listen hv/-rf 127.0.0.1']],
    );
  });

  it('a QEMU with a domain UUID is libvirt-managed; one with an unknown UUID or none is not; loopback and reverse are no findings', () => {
    const inv = inventoryOf([['dumpxml-win2016-loopback.xml', 'running']]);
    const r = auditHost(
      'hv',
      inv,
      [
        qemu(1, '-uuid', '766D6400-6C61-4B00-8000-000000002016', '-vnc', '0.0.0.0:0'),
        qemu(2, '-uuid', '00000000-0000-0000-0000-000000000001', '-vnc', ':3,password=on,tls-creds=t0'),
        qemu(3, '-vnc', '127.0.0.1:4'),
        qemu(4, '-vnc', '192.0.2.7:5500,reverse=on'),
        qemu(5, '-vnc', 'unix:/tmp/v.sock'),
      ],
      {},
    );
    assert.deepEqual(
      r.consoles.filter((c) => !c.isManaged).map((c) => [c.pid, c.listen, c.socket ?? null, c.isExposed]),
      [
        [2, ['0.0.0.0'], null, true],
        [3, ['127.0.0.1'], null, false],
        [5, [], '/tmp/v.sock', false],
      ],
    );
    assert.deepEqual(
      r.findings.map((f) => [f.pid, f.severity]),
      [[2, 'low']],
    );
  });

  it("a hostile process's argv0 and name cannot put control characters in the report", () => {
    const p: QemuProcess = { pid: 9, user: 'eve', ...parseQemuArgv(['/tmp/qemu-system-\u001b[2Jx', '-name', 'a\nb', '-vnc', '0.0.0.0:1']) };
    const f = auditHost('hv', inventoryOf([]), [p], {}).findings[0]!;
    assert.ok([...`${f.message}${f.fix}`].every((ch) => ch.charCodeAt(0) >= 0x20));
    assert.match(f.message, /-name a\?b/);
  });
});
