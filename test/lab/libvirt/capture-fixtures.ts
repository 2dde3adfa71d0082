/**
 * Records real virsh / ip output from the lab hypervisor into
 * fixtures/libvirt/, for the parsers' unit tests. Run as root with the
 * hypervisor up (test/lab/libvirt/cli.ts up), then it stops libvirtd itself to
 * record the "daemon not running" error:
 *
 *   node --import tsx test/lab/libvirt/capture-fixtures.ts [--namespace NS]
 *
 * Each file is what the command printed, byte for byte; `*.stderr` files hold
 * stderr, and `errors.json` the exit status of each error case.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKOUT } from '../lab.js';
import { runProcess } from '../exec.js';
import { buildInventoryScript, newBoundary } from '../../../src/libvirt/inventory-script.js';
import { LAB_DOMAINS } from './domains.js';
import { LIBVIRT_URI, hostEnv, runInNamespace, virshIn } from './host-exec.js';
import { LAB_SSH_USER, libvirtDown } from './hypervisor.js';

const FIXTURES = join(CHECKOUT, 'fixtures', 'libvirt');
const nsIndex = process.argv.indexOf('--namespace');
const ns = nsIndex >= 0 ? (process.argv[nsIndex + 1] ?? 'vmd-host') : 'vmd-host';

function uuidOf(name: string): string {
  const d = LAB_DOMAINS.find((x) => x.name === name);
  if (!d) throw new Error(`no lab domain ${name}`);
  return d.uuid;
}

async function save(file: string, text: string): Promise<void> {
  await writeFile(join(FIXTURES, file), text);
  console.log(`wrote fixtures/libvirt/${file} (${text.length} bytes)`);
}

async function ok(file: string, args: string[]): Promise<void> {
  const r = await virshIn(ns, args);
  if (r.code !== 0) throw new Error(`virsh ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  await save(file, r.stdout);
}

const errors: Record<string, { argv: string[]; code: number | null }> = {};

async function failing(name: string, argv: string[], run: () => Promise<{ code: number | null; stdout: string; stderr: string }>): Promise<void> {
  const r = await run();
  if (r.code === 0) throw new Error(`${argv.join(' ')} was expected to fail`);
  errors[name] = { argv, code: r.code };
  await save(`error-${name}.stderr`, r.stderr);
}

await mkdir(FIXTURES, { recursive: true });

await ok('version.txt', ['version']);
await ok('list-all.txt', ['list', '--all']);
await ok('list-all-name.txt', ['list', '--all', '--name']);
await ok('list-all-uuid.txt', ['list', '--all', '--uuid']);
await ok('list-uuid-running.txt', ['list', '--uuid', '--state-running']);
await ok('list-uuid-shutoff.txt', ['list', '--uuid', '--state-shutoff']);

const dumps: [string, string, string[]][] = [
  ['dumpxml-win2016-loopback.xml', 'win2016', []],
  ['dumpxml-win2016-inactive.xml', 'win2016', ['--inactive']],
  ['dumpxml-win2019-exposed.xml', 'win2019', []],
  ['dumpxml-rhel8-passwd.xml', 'rhel8', []],
  ['dumpxml-rhel8-passwd-security-info.xml', 'rhel8', ['--security-info']],
  ['dumpxml-debian12-socket.xml', 'debian12', []],
  ['dumpxml-hostile-socket-listen.xml', `x'; touch pwned; echo '`, []],
  ['dumpxml-hostile-network-listen.xml', '$(touch pwned2)', []],
  ['dumpxml-win2012-shutoff.xml', 'win2012', []],
  ['dumpxml-dash-spice-shutoff.xml', '-rf', ['--security-info']],
];
for (const [file, name, flags] of dumps) await ok(file, ['dumpxml', '--domain', uuidOf(name), ...flags]);

await ok('domstate-running.txt', ['domstate', '--domain', uuidOf('win2016'), '--reason']);
await ok('domstate-shutoff.txt', ['domstate', '--domain', uuidOf('win2012'), '--reason']);
await ok('domdisplay-hostile-socket.txt', ['domdisplay', '--domain', uuidOf(`x'; touch pwned; echo '`)]);
await ok('net-list-all.txt', ['net-list', '--all']);
await ok('net-list-all-name.txt', ['net-list', '--all', '--name']);
await ok('net-list-all-uuid.txt', ['net-list', '--all', '--uuid']);
await ok('net-dumpxml-default.xml', ['net-dumpxml', '--network', 'default']);
await ok('net-dhcp-leases-default.txt', ['net-dhcp-leases', '--network', 'default']);
await ok('domifaddr-win2016-lease.txt', ['domifaddr', '--domain', 'win2016', '--source', 'lease']);

const neigh = await runInNamespace(ns, ['ip', 'neigh', 'show']);
await save('ip-neigh.txt', neigh.stdout);
const arpN = await runInNamespace(ns, ['busybox', 'arp', '-n']);
await save('arp-n-busybox.txt', arpN.stdout);
// net-tools' `arp -n` is the seed's own command (Debian package net-tools).
const netTools = await runInNamespace(ns, ['arp', '-n']);
if (netTools.code === 0) await save('arp-n-net-tools.txt', netTools.stdout);
const procArp = await runInNamespace(ns, ['cat', '/proc/net/arp']);
await save('proc-net-arp.txt', procArp.stdout);

// domifaddr --source arp: libvirt 9.0 asks the kernel over netlink and fails inside a network namespace.
const arp = await virshIn(ns, ['domifaddr', '--domain', 'win2016', '--source', 'arp']);
await save('domifaddr-win2016-arp.txt', arp.stdout);
if (arp.code !== 0) {
  errors['domifaddr-arp'] = { argv: ['domifaddr', '--domain', 'win2016', '--source', 'arp'], code: arp.code };
  await save('error-domifaddr-arp.stderr', arp.stderr);
}

await failing('domain-not-found', ['dumpxml', '--domain', 'no-such-vm'], () => virshIn(ns, ['dumpxml', '--domain', 'no-such-vm']));
await failing('domain-uuid-not-found', ['dumpxml', '--domain', '00000000-0000-0000-0000-000000000000'], () =>
  virshIn(ns, ['dumpxml', '--domain', '00000000-0000-0000-0000-000000000000']),
);
await failing('network-not-found', ['net-dhcp-leases', '--network', 'nosuchnet'], () => virshIn(ns, ['net-dhcp-leases', '--network', 'nosuchnet']));
await failing('domain-not-running', ['domifaddr', '--domain', 'win2012', '--source', 'lease'], () =>
  virshIn(ns, ['domifaddr', '--domain', 'win2012', '--source', 'lease']),
);
await failing('no-guest-agent', ['domifaddr', '--domain', 'win2016', '--source', 'agent'], () =>
  virshIn(ns, ['domifaddr', '--domain', 'win2016', '--source', 'agent']),
);
await failing('permission-denied', ['runuser', '-u', 'nobody', '--', 'virsh', '-c', LIBVIRT_URI, 'list'], () =>
  runInNamespace(ns, ['runuser', '-u', 'nobody', '--', 'virsh', '-c', LIBVIRT_URI, 'list']),
);
await failing('virsh-missing', ['sh', '-c', 'virsh list'], () => runProcess(['/bin/sh', '-c', `virsh -c ${LIBVIRT_URI} list`], { env: { PATH: '/nonexistent', LC_ALL: 'C' } }));

// The inventory script, as the lab's SSH user sees it (this is what vmdesk receives over SSH).
const boundary = newBoundary();
const script = buildInventoryScript(LIBVIRT_URI, boundary);
const inv = await runInNamespace(ns, ['sh', '-c', script], { user: LAB_SSH_USER, cwd: '/tmp' });
if (inv.code !== 0) throw new Error(`inventory script exited ${inv.code}: ${inv.stderr}`);
await save('inventory-labuser.txt', inv.stdout);
await save('inventory-labuser.boundary', `${boundary}\n`);
const invDenied = await runInNamespace(ns, ['runuser', '-u', 'nobody', '--', 'sh', '-c', script], { cwd: '/tmp' });
await save('inventory-nobody.txt', invDenied.stdout);
await save('inventory-nobody.boundary', `${boundary}\n`);

await libvirtDown({ namespace: ns });
await failing('libvirtd-not-running', ['virsh', '-c', LIBVIRT_URI, 'list'], () => runProcess(['virsh', '-c', LIBVIRT_URI, 'list'], { env: hostEnv() }));
const invDown = await runInNamespace(ns, ['sh', '-c', script], { cwd: '/tmp' });
await save('inventory-libvirtd-down.txt', invDown.stdout);
await save('inventory-libvirtd-down.boundary', `${boundary}\n`);

await save('errors.json', `${JSON.stringify(errors, null, 2)}\n`);
