/**
 * SSH users whose login shell is not POSIX, on the real KVM host: sshd runs
 * every exec request through that shell (`$SHELL -c STRING`), and fish reads
 * `\'` inside '...' as an escape, tcsh expands `!` there. Through them vmdesk
 * lists and reaches VMs, edits a definition (two backups, two files), and VM
 * names built to break out of POSIX quoting under fish, tcsh or sh run nothing
 * anywhere on the host. The users, their ssh_config entries and the
 * hostile-named domains are this file's own, made in before() and removed in
 * after(); the shared lab domains stay as they are.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labDown, labUp, type Lab } from './lab.js';
import { clientSshConfig, lookupUser, setPassword } from './accounts.js';
import { stopAll, vmdeskOk } from './cli-contract.js';
import { runChecked } from './exec.js';
import { fileExists } from './files.js';
import { ADDRESSES, NAMESPACES } from './netns.js';
import { killPids, pidsOwnedBy } from './processes.js';
import { rfbHello } from './rfb.js';
import { libvirtDown, libvirtUp, LIBVIRT_GROUP, type Hypervisor } from './libvirt/hypervisor.js';
import { LAB_DOMAINS, LAB_UUID_PREFIX, LIBVIRT_RUN_DIR } from './libvirt/domains.js';

interface ShellUser {
  name: string;
  shell: string;
  /** The client's ssh_config Host for this user on the KVM host. */
  host: string;
}

const SHELL_USERS: readonly ShellUser[] = [
  { name: 'labfish', shell: '/usr/bin/fish', host: 'kvmfish' },
  { name: 'labtcsh', shell: '/usr/bin/tcsh', host: 'kvmtcsh' },
];

/** Each would run `touch pwnedN` in the user's home if a login shell parsed vmdesk's POSIX quoting. */
const HOSTILE_NAMES = [
  `x\\'; touch pwned #`, // fish: \' is an escape inside '...'
  `x\\\\'; touch pwned2 #`, // fish: \\ is one too
  `t!#:s^qemu^x;touch pwned3;^`, // tcsh: history substitution inside '...' rewrites the line
  '$(touch pwned4)',
  '`touch pwned5`',
  'a; touch pwned6 #',
] as const;
const PWNED = ['pwned', 'pwned2', 'pwned3', 'pwned4', 'pwned5', 'pwned6', 'pwned7'];

interface TestDomain {
  name: string;
  uuid: string;
  listen: string;
}
const HOSTILE_DOMAINS: readonly TestDomain[] = HOSTILE_NAMES.map((name, i) => ({ name, uuid: `${LAB_UUID_PREFIX}00000000050${i}`, listen: '127.0.0.1' }));
/** A shut-off VM whose console listens on every address, for vnc-listen's backups. */
const EXPOSED: TestDomain = { name: `x\\'; touch pwned7 # exposed`, uuid: `${LAB_UUID_PREFIX}000000000510`, listen: '0.0.0.0' };
const DOMAINS = [...HOSTILE_DOMAINS, EXPOSED];

function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** A diskless guest: QEMU starts (its VNC server answers at once) and SeaBIOS waits for a boot device. */
function domainXml(d: TestDomain): string {
  return `<domain type='qemu'>
  <name>${xmlText(d.name)}</name>
  <uuid>${d.uuid}</uuid>
  <description>vmdesk lab: login-shells.test.ts</description>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <graphics type='vnc' port='-1' autoport='yes' listen='${d.listen}'/>
    <video><model type='vga'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

const homeOf = (u: ShellUser) => `/home/${u.name}`;

async function removeUser(u: ShellUser): Promise<void> {
  const acct = await lookupUser(u.name);
  if (!acct) return;
  if (acct.uid !== 0) await killPids(await pidsOwnedBy(acct.uid));
  await runChecked(['userdel', '--remove', u.name]).catch(() => runChecked(['userdel', u.name]));
}

let lab: Lab;
let hv: Hypervisor;
before(async () => {
  lab = await labUp();
  hv = await libvirtUp({ namespace: NAMESPACES.host, startGuests: false });
  for (const u of SHELL_USERS) {
    await removeUser(u);
    await runChecked(['useradd', '--create-home', '--home-dir', homeOf(u), '--shell', u.shell, '--groups', LIBVIRT_GROUP, '--comment', 'vmdesk lab', u.name]);
    // sshd (UsePAM no) refuses a locked account even with a key.
    await setPassword(u.name, lab.password);
    await writeFile(join(lab.paths.runDir, 'authorized_keys', u.name), `${lab.users.client.publicKey}\n`, { mode: 0o644 });
  }
  const hosts = SHELL_USERS.map((u) => `Host ${u.host}\n  HostName ${ADDRESSES.host}\n  User ${u.name}\n  ProxyJump jump\n\n`).join('');
  await lab.writeClientFile('.ssh/config', `${hosts}${clientSshConfig()}`);
  for (const d of DOMAINS) {
    const file = join(LIBVIRT_RUN_DIR, 'xml', `${d.uuid}.xml`);
    await writeFile(file, domainXml(d));
    assert.equal((await hv.virsh(['define', '--file', file])).code, 0, d.name);
  }
}, { timeout: 600_000 });

after(async () => {
  if (lab) await stopAll(lab);
  for (const u of SHELL_USERS) await removeUser(u);
  for (const d of DOMAINS) {
    await hv?.virsh(['destroy', '--domain', d.uuid]);
    await hv?.virsh(['undefine', '--domain', d.uuid]);
  }
  await libvirtDown({ namespace: NAMESPACES.host });
  await labDown();
}, { timeout: 120_000 });

afterEach(() => stopAll(lab), { timeout: 30_000 });

async function assertNothingRan(): Promise<void> {
  const dirs = ['/', '/tmp', '/root', '/home/labuser', '/home/vmdclient', ...SHELL_USERS.map(homeOf), process.cwd(), '/var/lib/libvirt/qemu', LIBVIRT_RUN_DIR];
  for (const dir of dirs) {
    for (const f of PWNED) assert.equal(await fileExists(`${dir}/${f}`), false, `${dir}/${f}`);
  }
}

describe('SSH users with fish and tcsh as login shell', () => {
  for (const u of SHELL_USERS) {
    test(`${u.shell}: ls lists every VM, hostile names exactly`, { timeout: 120_000 }, async () => {
      const r = await vmdeskOk(lab, ['ls', u.host, '--json']);
      const [host] = JSON.parse(r.stdout) as { host: string; vms: { name?: string; uuid: string; state: string }[] }[];
      const names = new Map(host!.vms.map((v) => [v.uuid, v.name]));
      for (const d of [...LAB_DOMAINS, ...DOMAINS]) assert.equal(names.get(d.uuid), d.name);
      await assertNothingRan();
    });

    test(`${u.shell}: vnc --start reaches each hostile-named VM, whose QEMU answers with its own name`, { timeout: 600_000 }, async () => {
      for (const d of HOSTILE_DOMAINS) {
        const r = await vmdeskOk(lab, ['vnc', '-d', '--json', '--start', `${u.host}/${d.name}`], 180_000);
        const port = (JSON.parse(r.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
        assert.equal((await rfbHello(await lab.clientConnect('127.0.0.1', port))).name, `QEMU (${d.name})`);
        await stopAll(lab);
        assert.equal((await hv.virsh(['destroy', '--domain', d.uuid])).code, 0, d.name);
      }
      await assertNothingRan();
    });
  }

  test('fish: vnc-listen there and back keeps two backups, 0600, each the definition it replaced', { timeout: 180_000 }, async () => {
    const [fish] = SHELL_USERS;
    const ref = `${fish!.host}/${EXPOSED.name}`;
    const first = JSON.parse((await vmdeskOk(lab, ['vnc-listen', '--json', ref, '127.0.0.1'])).stdout) as { backupPath: string; before: string[] };
    const second = JSON.parse((await vmdeskOk(lab, ['vnc-listen', '--json', '--yes', ref, '0.0.0.0'])).stdout) as { backupPath: string; before: string[] };
    assert.deepEqual([first.before, second.before], [['0.0.0.0'], ['127.0.0.1']]);
    assert.notEqual(first.backupPath, second.backupPath);
    const acct = (await lookupUser(fish!.name))!;
    for (const [b, listen] of [
      [first, '0.0.0.0'],
      [second, '127.0.0.1'],
    ] as const) {
      assert.ok(b.backupPath.startsWith(`${homeOf(fish!)}/.local/state/vmdesk/backups/${EXPOSED.uuid}-`), b.backupPath);
      const st = await stat(b.backupPath);
      assert.deepEqual([st.mode & 0o777, st.uid], [0o600, acct.uid]);
      const xml = await readFile(b.backupPath, 'utf8');
      assert.match(xml, new RegExp(`<graphics type='vnc'[^>]* listen='${listen.replace(/\./g, '\\.')}'`));
      assert.ok(xml.includes(`<name>${xmlText(EXPOSED.name)}</name>`), xml);
    }
    const now = await hv.virsh(['dumpxml', '--inactive', '--domain', EXPOSED.uuid]);
    assert.match(now.stdout, /listen='0\.0\.0\.0'/);
    assert.ok(now.stdout.includes(`<name>${xmlText(EXPOSED.name)}</name>`));
    await assertNothingRan();
  });
});
