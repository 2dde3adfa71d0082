/**
 * Exposed consoles found and fixed, and guests' addresses pinned, through the
 * jump host as the client user types it: `vmdesk audit`, `vnc-listen`,
 * `pin-ip`. Every claim is checked on the hypervisor with its own tools:
 * `ss -ltn` for what really listens, `virsh dumpxml --inactive
 * --security-info` for the definition byte for byte, `virsh net-dumpxml` and
 * `net-dhcp-leases` for reservations and leases, a connection from the jump
 * host for what the network can reach.
 *
 * Besides the lab's domains (only win2016 is started here) it defines three
 * of its own: aud-open (VNC on 0.0.0.0, no password), aud-pw (0.0.0.0 with a
 * password) and aud-lo (127.0.0.1), and starts a QEMU by hand with `-vnc
 * 0.0.0.0:200`, which libvirt does not know.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { labDown, labUp, type Lab } from './lab.js';
import { assertExit, describeRun, parseJsonError, stopAll, vmdeskOk } from './cli-contract.js';
import { libvirtDown, libvirtUp, type Hypervisor } from './libvirt/hypervisor.js';
import { HOSTILE_NAMES, LAB_DOMAINS, LAB_UUID_PREFIX, VNC_PASSWORD, WIN2016_IP, WIN2016_MAC, type LabDomain } from './libvirt/domains.js';
import {
  defineGuest,
  inactiveXml,
  leasedIps,
  listenAddresses,
  networkXmlOnHost,
  powerCycle,
  rfbGreetingFrom,
  startGuest,
  startHandQemu,
  tcpListeners,
  vncPort,
  wildcardListeners,
  type HandStartedQemu,
} from './libvirt/host-probes.js';
import { lookupUser } from './accounts.js';
import { runChecked } from './exec.js';
import { pollUntil } from './poll.js';
import { rfbHello } from './rfb.js';
import { fileExists } from './files.js';

/** The new commands' exit statuses (docs/errors.md), written out here as cli-contract.ts does. */
const EXIT = { OK: 0, LIBVIRT_FAILED: 16, AUDIT_EXPOSED: 21, CONFIRMATION_REQUIRED: 22, GRAPHICS_EDIT_UNSUPPORTED: 23, VM_SHUTDOWN_TIMEOUT: 24, DHCP_REFUSED: 25 } as const;

const AUD_OPEN: LabDomain = { name: 'aud-open', uuid: `${LAB_UUID_PREFIX}00000000ad01`, mac: '52:54:00:6c:ad:01', graphics: 'exposed', isRunning: true };
const AUD_PW: LabDomain = { name: 'aud-pw', uuid: `${LAB_UUID_PREFIX}00000000ad02`, mac: '52:54:00:6c:ad:02', graphics: 'exposed-password', isRunning: true };
const AUD_LO: LabDomain = { name: 'aud-lo', uuid: `${LAB_UUID_PREFIX}00000000ad03`, mac: '52:54:00:6c:ad:03', graphics: 'loopback-address', isRunning: true };
/** This file's own domains, running next to win2016 (the lab's other guests stay shut off here). */
const EXTRA = [AUD_OPEN, AUD_PW, AUD_LO];
const WIN2016 = LAB_DOMAINS.find((d) => d.name === 'win2016')!;
/** The lab's domain with <listen type='network'>: its console is on the bridge address, so exposed too. */
const NETWORK_LISTEN_VM = HOSTILE_NAMES[1];
/** Display 200 = port 6100: the lab's services hold 127.0.0.1:5900-6000 and libvirt's autoports start at 6001. */
const HAND_QEMU = { display: 200, name: 'aud-handmade' };
/** Where vmdesk keeps definitions it replaced, in the SSH user's home on the host. */
const HOST_BACKUP_DIR = '/home/labuser/.local/state/vmdesk/backups';
const RESTART = ['--restart', '--force', '--shutdown-timeout', '5'];

let lab: Lab;
let hv: Hypervisor;
let qemu: HandStartedQemu | undefined;

/** Files libvirtd writes a domain's persistent definition to; the failing-define test makes one immutable. */
const configFile = (d: LabDomain) => `/etc/libvirt/qemu/${d.name}.xml`;

async function unfreeze(d: LabDomain): Promise<void> {
  if (await fileExists(configFile(d))) await runChecked(['chattr', '-i', configFile(d)]);
}

async function ensureHandQemu(): Promise<HandStartedQemu> {
  if (qemu === undefined) qemu = await startHandQemu(hv, HAND_QEMU);
  return qemu;
}

async function stopHandQemu(): Promise<void> {
  await qemu?.stop();
  qemu = undefined;
}

before(async () => {
  lab = await labUp();
  hv = await libvirtUp({ namespace: 'vmd-host', startGuests: false });
  await startGuest(hv, WIN2016);
  for (const d of EXTRA) await defineGuest(hv, d);
  // win2016 must hold its seed address (a reservation in the lab network) before pin-ip plays with it.
  await pollUntil(async () => (await leasedIps(hv, WIN2016_MAC)).includes(WIN2016_IP), { timeoutMs: 240_000, intervalMs: 1000, what: `win2016's lease ${WIN2016_IP}` });
}, { timeout: 600_000 });

after(async () => {
  await stopHandQemu().catch(() => undefined);
  for (const d of EXTRA) await unfreeze(d).catch(() => undefined);
  // The definitions vmdesk saved (lab domains only, named by UUID) hold the lab's VNC password.
  for (const f of await readdir(HOST_BACKUP_DIR).catch(() => [] as string[])) {
    if (f.startsWith(LAB_UUID_PREFIX)) await rm(join(HOST_BACKUP_DIR, f), { force: true });
  }
  await libvirtDown({ namespace: 'vmd-host' });
  await labDown();
}, { timeout: 120_000 });
afterEach(() => stopAll(lab), { timeout: 30_000 });

interface AuditConsoleJson {
  vm?: string;
  pid?: number;
  processName?: string;
  kind: string;
  listen: string[];
  port?: number;
  hasPassword: boolean | null;
  isExposed: boolean;
  isManaged: boolean;
  state?: string;
}
interface AuditFindingJson {
  severity: 'high' | 'medium' | 'low';
  host: string;
  vm?: string;
  pid?: number;
  kind: string;
  listen: string;
  message: string;
  fix: string;
}
interface AuditJson {
  reports: { host: string; consoles: AuditConsoleJson[]; findings: AuditFindingJson[] }[];
  exposed: number;
}

async function auditJson(expectExit: number): Promise<AuditJson> {
  const r = await lab.vmdesk(['audit', 'kvmhost', '--json'], { timeoutMs: 60_000 });
  assertExit(r, expectExit);
  const parsed = JSON.parse(r.stdout) as AuditJson;
  assert.equal(parsed.reports.length, 1, r.stdout);
  assert.equal(parsed.reports[0]!.host, 'kvmhost');
  assert.equal(parsed.exposed, parsed.reports[0]!.findings.length);
  return parsed;
}

/** `vm` or `pid N` -> severity, for comparing whole sets of findings. */
function findingMap(a: AuditJson): Record<string, string> {
  return Object.fromEntries(a.reports[0]!.findings.map((f) => [f.vm ?? `pid ${f.pid}`, f.severity]));
}

async function tunnelName(vm: string): Promise<string | undefined> {
  const r = await vmdeskOk(lab, ['vnc', '-d', '--json', `kvmhost/${vm}`]);
  const port = (JSON.parse(r.stdout) as { forwards: { localPort: number }[] }).forwards[0]!.localPort;
  return (await rfbHello(await lab.clientConnect('127.0.0.1', port))).name;
}

/** Where `vm`'s console listens now (live port), as `ss -ltn` shows it, and what the jump host gets there. */
async function liveConsole(vm: string): Promise<{ port: number; listeners: string[]; fromJump: string }> {
  const port = await vncPort(hv, vm);
  const listeners = (await tcpListeners(hv)).filter((a) => a.endsWith(`:${port}`));
  return { port, listeners, fromJump: await rfbGreetingFrom(lab.namespaces.jump, lab.addresses.host, port) };
}

async function assertHostBackup(path: string, expected: string): Promise<void> {
  assert.ok(path.startsWith(`${HOST_BACKUP_DIR}/`), `backup ${path} is in the SSH user's state dir`);
  const st = await stat(path);
  assert.equal(st.mode & 0o777, 0o600, `${path} mode ${(st.mode & 0o777).toString(8)}`);
  assert.equal(st.uid, (await lookupUser('labuser'))!.uid, `${path} belongs to the SSH user`);
  assert.equal(await readFile(path, 'utf8'), expected, `${path} holds the previous definition byte for byte`);
}

describe('exposed consoles and pinned addresses through the jump host', () => {
  test('audit finds exactly the exposed consoles, with severities, and exits 21', { timeout: 180_000 }, async () => {
    const q = await ensureHandQemu();
    const openPort = await vncPort(hv, AUD_OPEN.name);
    const pwPort = await vncPort(hv, AUD_PW.name);
    // The host's own view first: what really listens on every address.
    assert.deepEqual(await wildcardListeners(hv), [`0.0.0.0:${openPort}`, `0.0.0.0:${pwPort}`, `0.0.0.0:${q.port}`].sort());

    const a = await auditJson(EXIT.AUDIT_EXPOSED);
    assert.deepEqual(findingMap(a), {
      'aud-open': 'high',
      'aud-pw': 'medium',
      'win2019': 'high', // the lab's exposed VM, shut off here: it listens on 0.0.0.0 once started
      [NETWORK_LISTEN_VM]: 'high', // <listen type='network'>: the bridge address, reachable by every guest
      [`pid ${q.pid}`]: 'high',
    });
    const findings = a.reports[0]!.findings;
    assert.deepEqual(findings.map((f) => f.severity), ['high', 'high', 'high', 'high', 'medium'], 'high severity first');
    const by = (key: string) => findings.find((f) => (f.vm ?? `pid ${f.pid}`) === key)!;
    assert.equal(by('aud-open').listen, `0.0.0.0:${openPort}`);
    assert.equal(by('aud-pw').listen, `0.0.0.0:${pwPort}`);
    assert.equal(by('aud-open').fix, 'vmdesk vnc-listen kvmhost/aud-open 127.0.0.1 --restart');
    assert.equal(by('win2019').fix, 'vmdesk vnc-listen kvmhost/win2019 127.0.0.1', 'a shut-off VM needs no restart');
    assert.equal(by(NETWORK_LISTEN_VM).fix, `vmdesk vnc-listen 'kvmhost/${NETWORK_LISTEN_VM}' 127.0.0.1`, 'a hostile name is quoted in the fix');
    const hand = by(`pid ${q.pid}`);
    assert.equal(hand.listen, `0.0.0.0:${q.port}`);
    assert.equal(hand.vm, undefined);
    assert.match(hand.message, /not managed by libvirt/);
    assert.match(hand.fix, new RegExp(`^stop PID ${q.pid} .*-vnc 127\\.0\\.0\\.1:${HAND_QEMU.display}$`));
    for (const f of findings) {
      assert.equal(f.host, 'kvmhost');
      assert.equal(f.kind, 'vnc');
      assert.equal(typeof f.message, 'string');
    }

    const consoles = a.reports[0]!.consoles;
    const lo = consoles.find((c) => c.vm === 'aud-lo')!;
    assert.deepEqual([lo.listen, lo.isExposed, lo.hasPassword, lo.isManaged], [['127.0.0.1'], false, false, true]);
    const pw = consoles.find((c) => c.vm === 'aud-pw')!;
    assert.deepEqual([pw.hasPassword, pw.isExposed], [true, true]);
    const handConsole = consoles.find((c) => c.pid === q.pid)!;
    assert.deepEqual([handConsole.isManaged, handConsole.processName, handConsole.port, handConsole.hasPassword], [false, HAND_QEMU.name, q.port, false]);
    // libvirt's own QEMUs are matched to their domains, never reported as hand-started.
    assert.deepEqual(consoles.filter((c) => c.pid !== undefined).map((c) => c.pid), [q.pid]);

    const text = await lab.vmdesk(['audit', 'kvmhost'], { timeoutMs: 60_000 });
    assertExit(text, EXIT.AUDIT_EXPOSED);
    assert.match(text.stdout, /aud-open .*EXPOSED/);
    assert.match(text.stdout, /aud-lo .* ok/);
    assert.match(text.stdout, new RegExp(`pid ${q.pid} \\(not libvirt\\) .*EXPOSED`));
    assert.match(text.stdout, /5 exposed consoles:/);
    assert.match(text.stdout, /\[MEDIUM\] aud-pw on kvmhost/);
  });

  test('audit --fix --yes --restart --force secures every libvirt console; the hand-started QEMU stays until it is stopped', { timeout: 300_000 }, async () => {
    const q = await ensureHandQemu();
    const openBefore = await inactiveXml(hv, AUD_OPEN.name);

    // Without a terminal and without --yes nothing is touched.
    const refused = await lab.vmdesk(['audit', 'kvmhost', '--fix', '--json'], { timeoutMs: 60_000 });
    assertExit(refused, EXIT.CONFIRMATION_REQUIRED);
    assert.equal(parseJsonError(refused).error.code, 'CONFIRMATION_REQUIRED');
    assert.equal(await inactiveXml(hv, AUD_OPEN.name), openBefore);

    const fix = await lab.vmdesk(['audit', 'kvmhost', '--fix', '--yes', ...RESTART], { timeoutMs: 240_000 });
    // The hand-started QEMU is still exposed: the audit after the fix says so, and the status stays 21.
    assertExit(fix, EXIT.AUDIT_EXPOSED);
    assert.match(fix.stdout, /Audit after the fix: 1 still exposed/, describeRun(fix));
    for (const vm of ['aud-open', 'aud-pw']) {
      assert.match(fix.stdout, new RegExp(`${vm} on kvmhost: console listen 0\\.0\\.0\\.0 -> 127\\.0\\.0\\.1\\n.*\\n  restarted: it now listens on 127\\.0\\.0\\.1`), describeRun(fix));
    }

    for (const d of [AUD_OPEN.name, AUD_PW.name, 'win2019', NETWORK_LISTEN_VM]) {
      assert.deepEqual(listenAddresses(await inactiveXml(hv, d)), ['127.0.0.1'], `${d}'s definition listens on 127.0.0.1 only`);
    }
    assert.match(await inactiveXml(hv, AUD_PW.name), new RegExp(`passwd='${VNC_PASSWORD}'`), "aud-pw's password survived the fix");
    // Restarted: the running VMs really listen on loopback now; only the hand-started QEMU is left on 0.0.0.0.
    for (const d of [AUD_OPEN, AUD_PW]) {
      const live = await liveConsole(d.name);
      assert.deepEqual(live.listeners, [`127.0.0.1:${live.port}`], `${d.name} listens on loopback only`);
      assert.equal(live.fromJump, 'ECONNREFUSED', `${d.name}'s console is no longer reachable from the jump host`);
    }
    assert.deepEqual(await wildcardListeners(hv), [`0.0.0.0:${q.port}`]);
    assert.equal(await tunnelName(AUD_OPEN.name), 'QEMU (aud-open)', 'still reached through SSH');

    const second = await auditJson(EXIT.AUDIT_EXPOSED);
    assert.deepEqual(findingMap(second), { [`pid ${q.pid}`]: 'high' });

    await stopHandQemu();
    const third = await lab.vmdesk(['audit', 'kvmhost'], { timeoutMs: 60_000 });
    assertExit(third, EXIT.OK);
    assert.match(third.stdout, /No exposed consoles\./);
    assert.deepEqual(await wildcardListeners(hv), []);
    for (const dir of ['/', '/tmp', '/home/labuser', '/home/vmdclient', process.cwd(), '/var/lib/libvirt/qemu']) {
      assert.equal(await fileExists(`${dir}/pwned2`), false, `${dir}/pwned2: the hostile name ran nothing`);
    }
  });

  test('vnc-listen to 0.0.0.0 and back: --yes required, applies at restart, --restart applies it now, same address is a no-op', { timeout: 300_000 }, async () => {
    const vm = AUD_LO.name;
    const original = await inactiveXml(hv, vm);
    const oldLive = await liveConsole(vm);
    assert.deepEqual(oldLive.listeners, [`127.0.0.1:${oldLive.port}`]);

    const refused = await lab.vmdesk(['vnc-listen', `kvmhost/${vm}`, '0.0.0.0', '--json'], { timeoutMs: 60_000 });
    assertExit(refused, EXIT.CONFIRMATION_REQUIRED);
    assert.equal(parseJsonError(refused).error.code, 'CONFIRMATION_REQUIRED');
    assert.equal(await inactiveXml(hv, vm), original, 'nothing changed without --yes');

    // --yes without --restart: the definition changes, the running QEMU keeps its old listener.
    const open = await vmdeskOk(lab, ['vnc-listen', `kvmhost/${vm}`, '0.0.0.0', '--yes'], 60_000);
    assert.match(open.stdout, /keeps its old listen address until it restarts/, describeRun(open));
    assert.match(open.stderr, /warning: listening on 0\.0\.0\.0/);
    const backup = /previous definition saved on kvmhost: (\S+)/.exec(open.stdout)?.[1];
    assert.ok(backup, open.stdout);
    await assertHostBackup(backup, original);
    assert.deepEqual(listenAddresses(await inactiveXml(hv, vm)), ['0.0.0.0']);
    const notYet = await liveConsole(vm);
    assert.deepEqual(notYet, oldLive, 'the running VM still listens where it did');

    // --restart without --force: the guest ignores the ACPI shutdown, so it times out (24) and is left running as it was.
    const timedOut = await lab.vmdesk(['vnc-listen', `kvmhost/${vm}`, '0.0.0.0', '--yes', '--json', '--restart', '--shutdown-timeout', '3'], { timeoutMs: 120_000 });
    assertExit(timedOut, EXIT.VM_SHUTDOWN_TIMEOUT);
    assert.equal(parseJsonError(timedOut).error.code, 'VM_SHUTDOWN_TIMEOUT');
    assert.equal((await hv.virsh(['domstate', '--domain', vm])).stdout.trim(), 'running');
    assert.deepEqual(await liveConsole(vm), oldLive);

    // --restart: the definition is already 0.0.0.0, the live console is stale, so only the restart happens.
    const restarted = JSON.parse((await vmdeskOk(lab, ['vnc-listen', `kvmhost/${vm}`, '0.0.0.0', '--yes', '--json', ...RESTART], 120_000)).stdout) as {
      isChanged: boolean;
      isRestarted: boolean;
      backupPath?: string;
    };
    assert.deepEqual([restarted.isChanged, restarted.isRestarted, restarted.backupPath], [false, true, undefined]);
    const exposed = await liveConsole(vm);
    assert.deepEqual(exposed.listeners, [`0.0.0.0:${exposed.port}`]);
    assert.equal(exposed.fromJump, 'RFB 003.008', 'the jump host (another machine) reaches the console directly');
    assert.equal(await tunnelName(vm), `QEMU (${vm})`);
    await stopAll(lab);

    // Back to loopback, taking effect at once.
    const exposedXml = await inactiveXml(hv, vm);
    const back = JSON.parse((await vmdeskOk(lab, ['vnc-listen', `kvmhost/${vm}`, '127.0.0.1', '--json', ...RESTART], 120_000)).stdout) as {
      isChanged: boolean;
      isRestarted: boolean;
      before: string[];
      backupPath: string;
    };
    assert.deepEqual([back.isChanged, back.isRestarted, back.before], [true, true, ['0.0.0.0']]);
    await assertHostBackup(back.backupPath, exposedXml);
    const safe = await liveConsole(vm);
    assert.deepEqual(safe.listeners, [`127.0.0.1:${safe.port}`]);
    assert.equal(safe.fromJump, 'ECONNREFUSED');
    assert.equal(await tunnelName(vm), `QEMU (${vm})`);

    // The same address again: exit 0, says so, and the definition is byte-identical (no define, no backup).
    const settled = await inactiveXml(hv, vm);
    const backups = (await readdir(HOST_BACKUP_DIR)).length;
    const same = await vmdeskOk(lab, ['vnc-listen', `kvmhost/${vm}`, '127.0.0.1'], 60_000);
    assert.match(same.stdout, /already listens on 127\.0\.0\.1; its definition is unchanged/);
    assert.equal(await inactiveXml(hv, vm), settled);
    assert.equal((await readdir(HOST_BACKUP_DIR)).length, backups, 'no backup for a no-op');
  });

  test('vnc-listen keeps the VNC password, and the saved definitions (host and --backup-dir) hold it byte for byte', { timeout: 180_000 }, async () => {
    const vm = AUD_PW.name;
    await vmdeskOk(lab, ['vnc-listen', `kvmhost/${vm}`, '127.0.0.1'], 60_000);
    const before = await inactiveXml(hv, vm);
    assert.match(before, new RegExp(`passwd='${VNC_PASSWORD}'`));
    const localDir = `${lab.users.client.home}/vmd-backups`;
    const r = await vmdeskOk(lab, ['vnc-listen', `kvmhost/${vm}`, '0.0.0.0', '--yes', '--json', '--backup-dir', localDir], 60_000);
    const out = JSON.parse(r.stdout) as { isChanged: boolean; backupPath: string; localBackup: string };
    assert.equal(out.isChanged, true);
    assert.ok(!r.stdout.includes(VNC_PASSWORD), 'the password is not printed');
    await assertHostBackup(out.backupPath, before);
    assert.ok(out.localBackup.startsWith(`${localDir}/`), out.localBackup);
    const local = await stat(out.localBackup);
    assert.equal(local.mode & 0o777, 0o600);
    assert.equal(local.uid, lab.users.client.uid);
    assert.equal(await readFile(out.localBackup, 'utf8'), before);
    const after = await inactiveXml(hv, vm);
    assert.deepEqual(listenAddresses(after), ['0.0.0.0']);
    assert.match(after, new RegExp(`passwd='${VNC_PASSWORD}'`), 'the password survived the edit');
    // Only the listen address changed: the rest of the definition is as it was.
    assert.equal(after.replaceAll('0.0.0.0', '127.0.0.1'), before);
    await vmdeskOk(lab, ['vnc-listen', `kvmhost/${vm}`, '127.0.0.1'], 60_000);
    assert.equal(await inactiveXml(hv, vm), before);
  });

  test('vnc-listen leaves a unix-socket console alone (exit 23)', { timeout: 120_000 }, async () => {
    for (const vm of ['debian12', HOSTILE_NAMES[0]]) {
      const before = await inactiveXml(hv, vm);
      const r = await lab.vmdesk(['vnc-listen', `kvmhost/${vm}`, '127.0.0.1', '--json']);
      assertExit(r, EXIT.GRAPHICS_EDIT_UNSUPPORTED);
      assert.equal(parseJsonError(r).error.code, 'GRAPHICS_EDIT_UNSUPPORTED');
      assert.equal(await inactiveXml(hv, vm), before, vm);
    }
  });

  test('a failing virsh define (immutable config file) exits 16, says nothing changed, and leaves the definition byte-identical', { timeout: 180_000 }, async () => {
    const vm = AUD_LO.name;
    const before = await inactiveXml(hv, vm);
    const fileBefore = await readFile(configFile(AUD_LO), 'utf8');
    const liveBefore = await liveConsole(vm);
    // libvirtd saves a definition by writing NAME.xml.new and renaming it over NAME.xml: an immutable NAME.xml makes that fail for real.
    await runChecked(['chattr', '+i', configFile(AUD_LO)]);
    let r;
    try {
      r = await lab.vmdesk(['vnc-listen', `kvmhost/${vm}`, '0.0.0.0', '--yes', '--json', ...RESTART], { timeoutMs: 120_000 });
    } finally {
      await unfreeze(AUD_LO);
    }
    assertExit(r, EXIT.LIBVIRT_FAILED);
    const err = parseJsonError(r).error;
    assert.equal(err.code, 'LIBVIRT_COMMAND_FAILED');
    assert.match(err.message, /nothing was changed/);
    assert.equal(await inactiveXml(hv, vm), before, 'the definition is byte-identical');
    assert.equal(await readFile(configFile(AUD_LO), 'utf8'), fileBefore);
    assert.deepEqual(await liveConsole(vm), liveBefore, 'and the VM was not restarted');
    assert.equal(await fileExists(`${configFile(AUD_LO)}.new`), false);

    // With the file writable again the same command works: the failure was the define, not vmdesk.
    await vmdeskOk(lab, ['vnc-listen', `kvmhost/${vm}`, '0.0.0.0', '--yes'], 60_000);
    await vmdeskOk(lab, ['vnc-listen', `kvmhost/${vm}`, '127.0.0.1'], 60_000);
    assert.equal(await inactiveXml(hv, vm), before);
  });

  test('pin-ip: pins the current address idempotently, refuses bad addresses, moves the guest to another address, removes', { timeout: 420_000 }, async () => {
    const hostLine = (xml: string) => [...xml.matchAll(/<host\b[^>]*\/>/g)].map((m) => m[0]).filter((h) => h.includes(`mac='${WIN2016_MAC}'`));
    const waitLease = async (ip: string) => {
      let last: string[] = [];
      await pollUntil(
        async () => {
          last = await leasedIps(hv, WIN2016_MAC);
          return last.length === 1 && last[0] === ip;
        },
        { timeoutMs: 240_000, intervalMs: 1000, what: `win2016's only lease to be ${ip}` },
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}; its leases: ${last.join(', ') || 'none'}`, { cause: e });
      });
    };
    try {
      // The lab network reserves .217 for win2016 (as in the seed): remove it first, so pin-ip has to add it.
      const removed = JSON.parse((await vmdeskOk(lab, ['pin-ip', 'kvmhost/win2016', '--remove', '--json'])).stdout) as { action: string; isLive: boolean; mac: string };
      assert.deepEqual([removed.action, removed.isLive, removed.mac], ['delete', true, WIN2016_MAC]);
      assert.deepEqual(hostLine(await networkXmlOnHost(hv)), []);
      assert.deepEqual(hostLine(await networkXmlOnHost(hv, { inactive: true })), []);
      const again = await vmdeskOk(lab, ['pin-ip', 'kvmhost/win2016', '--remove']);
      assert.match(again.stdout, /has no reservation; nothing changed/);

      // The current address (from the lease) is pinned, live and persistent; a second run changes nothing.
      const pinned = await vmdeskOk(lab, ['pin-ip', 'kvmhost/win2016']);
      assert.match(pinned.stdout, new RegExp(`pinned win2016 \\(${WIN2016_MAC}\\) on network default to ${WIN2016_IP.replaceAll('.', '\\.')} \\(live and persistent\\)`));
      const netXml = await networkXmlOnHost(hv);
      assert.deepEqual(hostLine(netXml).length, 1);
      assert.match(hostLine(netXml)[0]!, new RegExp(`ip='${WIN2016_IP}'`));
      assert.deepEqual(hostLine(await networkXmlOnHost(hv, { inactive: true })), hostLine(netXml));
      const second = await vmdeskOk(lab, ['pin-ip', 'kvmhost/win2016']);
      assert.match(second.stdout, /already pinned to 192\.168\.122\.217; nothing changed/);
      assert.equal(await networkXmlOnHost(hv), netXml);

      const ls = JSON.parse((await vmdeskOk(lab, ['ls', 'kvmhost', '--json'])).stdout) as {
        networks: { name: string; addresses: { dhcp?: { hosts: { mac?: string; ip: string }[] } }[] }[];
      }[];
      const hosts = ls[0]!.networks.find((n) => n.name === 'default')!.addresses.flatMap((a) => a.dhcp?.hosts ?? []);
      assert.deepEqual(hosts.filter((h) => h.mac === WIN2016_MAC).map((h) => h.ip), [WIN2016_IP]);

      // Refused: outside the network, and an address reserved for another MAC. Nothing changes.
      const outside = await lab.vmdesk(['pin-ip', 'kvmhost/win2016', '10.9.9.9', '--json']);
      assertExit(outside, EXIT.DHCP_REFUSED);
      assert.equal(parseJsonError(outside).error.code, 'DHCP_IP_INVALID');
      const taken = await lab.vmdesk(['pin-ip', 'kvmhost/win2019', WIN2016_IP, '--json']);
      assertExit(taken, EXIT.DHCP_REFUSED);
      assert.equal(parseJsonError(taken).error.code, 'DHCP_IP_CONFLICT');
      // An address another guest holds a lease on right now: dnsmasq would not hand it over, two guests would claim it.
      const [openIp] = await pollUntil(async () => {
        const ips = await leasedIps(hv, AUD_OPEN.mac);
        return ips.length > 0 ? ips : undefined;
      }, { timeoutMs: 120_000, intervalMs: 1000, what: "aud-open's lease" });
      const leased = await lab.vmdesk(['pin-ip', 'kvmhost/win2016', openIp!, '--json']);
      assertExit(leased, EXIT.DHCP_REFUSED);
      assert.equal(parseJsonError(leased).error.code, 'DHCP_IP_CONFLICT');
      assert.equal(await networkXmlOnHost(hv), netXml);

      // Another address: the guest gets it when it next asks (here: a power cycle).
      const moved = JSON.parse((await vmdeskOk(lab, ['pin-ip', 'kvmhost/win2016', '192.168.122.250', '--json'])).stdout) as { action: string; ip: string };
      assert.deepEqual([moved.action, moved.ip], ['modify', '192.168.122.250']);
      assert.match(hostLine(await networkXmlOnHost(hv))[0]!, /ip='192\.168\.122\.250'/);
      await powerCycle(hv, WIN2016);
      await waitLease('192.168.122.250');
      await pollUntil(async () => (await hv.serialLog('win2016')).includes('VMDESK-LAB GUEST win2016 IP 192.168.122.250'), {
        timeoutMs: 60_000,
        intervalMs: 1000,
        what: 'the guest to report 192.168.122.250 on its console',
      });
      const lsVms = JSON.parse((await vmdeskOk(lab, ['ls', 'kvmhost', '--json'])).stdout) as { vms: { name: string; addresses: { ip: string; source: string }[] }[] }[];
      const win2016 = lsVms[0]!.vms.find((v) => v.name === 'win2016')!;
      assert.deepEqual(win2016.addresses.filter((a) => a.source === 'lease').map((a) => a.ip), ['192.168.122.250']);

      // --remove deletes exactly this reservation.
      await vmdeskOk(lab, ['pin-ip', 'kvmhost/win2016', '--remove']);
      assert.deepEqual(hostLine(await networkXmlOnHost(hv)), []);
      assert.deepEqual(hostLine(await networkXmlOnHost(hv, { inactive: true })), []);
    } finally {
      // Back to the lab's state: .217 reserved for win2016, and the guest holding it.
      const restore = await lab.vmdesk(['pin-ip', 'kvmhost/win2016', WIN2016_IP]);
      assert.equal(restore.code, 0, describeRun(restore));
      if (!(await leasedIps(hv, WIN2016_MAC)).includes(WIN2016_IP)) {
        await powerCycle(hv, WIN2016);
        await waitLease(WIN2016_IP);
      }
    }
  });
});
