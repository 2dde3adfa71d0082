import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { REDACTED, buildInventoryScript, newBoundary, parseInventoryOutput, type RawInventory } from './inventory-script.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

describe('parseInventoryOutput on the real script run as labuser against the lab', () => {
  const boundary = fixture('inventory-labuser.boundary').trim();
  const raw = parseInventoryOutput(fixture('inventory-labuser.txt'), boundary);

  it('is complete, with one section per command', () => {
    assert.equal(raw.isComplete, true);
    assert.equal(raw.preamble, '');
    const kinds = raw.sections.map((s) => `${s.kind} ${s.key}`);
    assert.deepEqual(kinds.slice(0, 6), ['version -', 'list all', 'list running', 'list paused', 'list shutoff', 'list other']);
    assert.equal(raw.sections.filter((s) => s.kind === 'dumpxml').length, 8);
    assert.equal(raw.sections.filter((s) => s.kind === 'net-dhcp-leases').length, 1);
    assert.equal(raw.sections.at(-1)?.kind, 'neigh');
    assert.ok(raw.sections.every((s) => s.exitCode === 0 && s.stderr === ''));
  });

  it('gives each command its output byte for byte', () => {
    const list = raw.sections.find((s) => s.kind === 'list' && s.key === 'all')!;
    assert.equal(list.stdout, fixture('list-all-uuid.txt'));
  });

  it('never carries the VNC password, only the fact that there is one', () => {
    const text = fixture('inventory-labuser.txt');
    assert.doesNotMatch(text, /Lab-pw1/);
    assert.match(text, new RegExp(`passwd='\\(redacted\\)'`));
  });
});

describe('parseInventoryOutput: failures and framing', () => {
  it('keeps exit status and stderr when libvirt refuses the user', () => {
    const raw = parseInventoryOutput(fixture('inventory-nobody.txt'), fixture('inventory-nobody.boundary').trim());
    const list = raw.sections.find((s) => s.kind === 'list')!;
    assert.equal(list.exitCode, 1);
    assert.equal(list.stderr, fixture('error-permission-denied.stderr').trimEnd());
    assert.equal(raw.isComplete, true);
  });

  it('notices a cut-off stream', () => {
    const boundary = fixture('inventory-labuser.boundary').trim();
    const text = fixture('inventory-labuser.txt');
    const raw = parseInventoryOutput(text.slice(0, text.indexOf(' begin dumpxml ') + 200), boundary);
    assert.equal(raw.isComplete, false);
    assert.equal(raw.sections.at(-1)?.exitCode, undefined);
  });

  it('throws LIBVIRT_OUTPUT_INVALID when no frame is there at all', () => {
    assert.throws(() => parseInventoryOutput('sh: 1: Syntax error\n', newBoundary()), (e: unknown) => isVmdeskError(e, 'LIBVIRT_OUTPUT_INVALID'));
  });

  it('rejects a bad boundary', () => {
    assert.throws(() => buildInventoryScript('qemu:///system', "x'; rm -rf /"), TypeError);
    assert.throws(() => parseInventoryOutput('', 'short'), TypeError);
  });
});

describe('the inventory script under /bin/sh with stub virsh and ip', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmdesk-inv-'));
  const bin = join(dir, 'bin');
  const work = join(dir, 'work');
  const log = join(dir, 'virsh.log');
  after(() => rmSync(dir, { recursive: true, force: true }));
  const forged = `@@${newBoundary()}`;
  const U1 = '11111111-2222-3333-4444-555555555555';
  const U2 = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
  const U3 = '33333333-3333-3333-3333-333333333333';
  const N1 = '99999999-8888-7777-6666-555555555555';
  // virsh as libvirt 9 behaves with several commands in one argument (checked against test:///default):
  // `;` separates commands, a failing one prints its error and a newline and the next one runs anyway,
  // and the exit status is the last command's. STUB_EXTRA=N lists N more shut-off domains.
  // What a hostile name could make virsh print, including a fake frame and a missing final newline.
  const stubVirsh = `#!/bin/sh
[ "$1" = -c ] || exit 64
uri=$2; shift 2
echo "$*" >> ${JSON.stringify(log)}
extra() { i=0; while [ "$i" -lt "\${STUB_EXTRA:-0}" ]; do printf 'eeeeeeee-0000-0000-0000-%012d\\n' "$i"; i=$((i+1)); done; }
one() {
  case "$*" in
    version) printf 'uri %s\\n' "$uri" ;;
    "list --all --uuid") printf '%s\\n%s\\n%s\\n' ${U1} ${U2} ${U3}; extra; printf '\\n' ;;
    "list --uuid --state-running") printf '%s\\n\\n' ${U1} ;;
    "list --uuid --state-shutoff") printf '%s\\n%s\\n' ${U2} ${U3}; extra; printf '\\n' ;;
    list*) printf '\\n' ;;
    "dumpxml --domain ${U1} --security-info") printf "<domain><name>${forged} end 0</name><graphics passwd='hunter2' type='vnc'/>\\n</domain>\\n"; echo 'warning: on stderr' >&2 ;;
    "dumpxml --domain ${U2} --security-info") echo 'error: operation forbidden: read only access prevents virDomainGetXMLDesc' >&2; return 1 ;;
    "dumpxml --domain ${U2}") printf '<domain><name>$(touch pwned2)</name></domain>\\n' ;;
    "dumpxml --domain ${U3}"*) echo "error: failed to get domain '${U3}'" >&2; return 1 ;;
    "dumpxml --domain eeeeeeee-"*) printf "<domain><name>bench</name><graphics passwd='x' type='vnc'/></domain>\\n" ;;
    "net-list --all --uuid") printf '%s\\n\\n' ${N1} ;;
    "net-dumpxml --network ${N1}") printf '<network><name>default</name></network>\\n' ;;
    "net-dhcp-leases --network ${N1}") printf ' Expiry Time   MAC address   Protocol   IP address   Hostname   Client ID or DUID\\n---\\n\\n' ;;
    *) echo "stub virsh: unexpected $*" >&2; return 99 ;;
  esac
}
[ "$#" -eq 1 ] || { one "$@"; exit; }
set -f
st=0
IFS=';'
for c in $1; do
  IFS=' '
  set -- $c
  [ "$#" -gt 0 ] || continue
  if [ "$1" = echo ]; then shift; echo "$*"; st=0; continue; fi
  one "$@"; st=$?
  if [ "$st" -ne 0 ]; then echo; fi
done
exit "$st"
`;
  const stubIp = `#!/bin/sh\nprintf '192.168.122.217 dev virbr0 lladdr 52:54:00:fc:b9:e6 STALE\\n'\n`;
  for (const [name, text] of [['virsh', stubVirsh], ['ip', stubIp]] as const) {
    spawnSync('mkdir', ['-p', bin, work]);
    writeFileSync(join(bin, name), text);
    chmodSync(join(bin, name), 0o755);
  }

  const run = (uri: string, env: Record<string, string> = {}) => {
    const boundary = newBoundary();
    writeFileSync(log, '');
    const r = spawnSync('/bin/sh', ['-c', buildInventoryScript(uri, boundary)], {
      cwd: work,
      env: { PATH: `${bin}:/usr/bin:/bin`, HOME: work, ...env },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const calls = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
    return { raw: parseInventoryOutput(r.stdout, boundary), calls, text: r.stdout };
  };
  const get = (raw: RawInventory, kind: string, key: string) => raw.sections.filter((s) => s.kind === kind && s.key === key);

  it('frames every command with its stdout and exit status, batched in few virsh processes', () => {
    const { raw, calls, text } = run('qemu:///system');
    assert.equal(raw.isComplete, true);
    assert.deepEqual(get(raw, 'version', '-'), [{ kind: 'version', key: '-', stdout: 'uri qemu:///system\n', stderr: '', exitCode: 0 }]);
    const [secure] = get(raw, 'dumpxml', U1);
    assert.equal(secure?.exitCode, 0);
    assert.equal(secure.stdout, `<domain><name>${forged} end 0</name><graphics passwd='${REDACTED}' type='vnc'/>\n</domain>\n`);
    assert.doesNotMatch(text, /hunter2/);
    // An empty state list is trusted only from a clean batch: this one had errors, so it ran again on its own.
    assert.deepEqual(get(raw, 'list', 'paused'), [{ kind: 'list', key: 'paused', stdout: '\n', stderr: '', exitCode: 0 }]);
    assert.equal(get(raw, 'list', 'shutoff')[0]?.stdout, `${U2}\n${U3}\n\n`);
    assert.equal(get(raw, 'net-dumpxml', N1)[0]?.exitCode, 0);
    assert.equal(get(raw, 'net-dhcp-leases', N1)[0]?.exitCode, 0);
    assert.equal(get(raw, 'neigh', 'ip')[0]?.stdout, '192.168.122.217 dev virbr0 lladdr 52:54:00:fc:b9:e6 STALE\n');
    // The batch keeps the stderr nobody can be blamed for with certainty.
    assert.match(raw.sections.find((s) => s.kind === 'batch')?.stderr ?? '', /warning: on stderr/);
    // ids, the batch, plain dumpxml for U2 and U3 in a second batch, U3 alone twice, the 2 empty lists alone.
    assert.equal(calls.length, 7, calls.join('\n'));
  });

  it('falls back to plain dumpxml for read-only access, in a batch', () => {
    const { raw } = run('qemu:///system');
    assert.deepEqual(get(raw, 'dumpxml', U2), []);
    assert.deepEqual(get(raw, 'dumpxml-public', U2), [{ kind: 'dumpxml-public', key: U2, stdout: '<domain><name>$(touch pwned2)</name></domain>\n', stderr: '', exitCode: 0 }]);
  });

  it("gives a domain whose dumpxml fails its own exit status and stderr", () => {
    const { raw } = run('qemu:///system');
    const [secure] = get(raw, 'dumpxml', U3);
    const [plain] = get(raw, 'dumpxml-public', U3);
    assert.equal(secure?.exitCode, 1);
    assert.equal(secure.stderr, `error: failed to get domain '${U3}'`);
    assert.equal(plain?.exitCode, 1);
    assert.equal(plain.stderr, `error: failed to get domain '${U3}'`);
  });

  it('reads 450 domains in a fixed number of virsh processes (200 commands each at most)', () => {
    const { raw, calls } = run('qemu:///system', { STUB_EXTRA: '450' });
    assert.equal(raw.sections.filter((s) => s.kind === 'dumpxml' && s.exitCode === 0).length, 451);
    const batches = calls.filter((c) => c.includes(';'));
    assert.ok(batches.every((c) => c.length < 128 * 1024 && c.split(';').length <= 3 * 200 + 1));
    // ids, 460 sections in batches of 200, then the same second round as above.
    assert.equal(calls.length, 9, calls.map((c) => c.slice(0, 80)).join('\n'));
  });

  it('shares 100 domains between two batches side by side, and leaves no temp files', () => {
    const tmp = join(dir, 'tmp');
    spawnSync('mkdir', ['-p', tmp]);
    const { raw, calls } = run('qemu:///system', { STUB_EXTRA: '100', TMPDIR: tmp });
    assert.equal(raw.sections.filter((s) => s.kind === 'dumpxml' && s.exitCode === 0).length, 101);
    assert.deepEqual(raw.sections.filter((s) => s.kind === 'batch').map((s) => s.key), ['58', '54', '2']);
    // Sections come in the order they were queued: the fixed ones first.
    assert.equal(raw.sections[0]?.kind, 'version');
    assert.equal(calls.length, 8, calls.map((c) => c.slice(0, 80)).join('\n'));
    assert.deepEqual(readdirSync(tmp), []);
  });

  it('runs every command alone when awk does not work, with the same sections', () => {
    const noawk = join(dir, 'noawk');
    spawnSync('mkdir', ['-p', noawk]);
    writeFileSync(join(noawk, 'awk'), '#!/bin/sh\nexit 127\n');
    chmodSync(join(noawk, 'awk'), 0o755);
    const { raw, calls } = run('qemu:///system', { PATH: `${noawk}:${bin}:/usr/bin:/bin` });
    assert.equal(raw.isComplete, true);
    assert.equal(raw.sections.some((s) => s.kind === 'batch'), false);
    assert.equal(get(raw, 'dumpxml', U1)[0]?.exitCode, 0);
    assert.doesNotMatch(get(raw, 'dumpxml', U1)[0]?.stdout ?? '', /hunter2/);
    assert.equal(get(raw, 'dumpxml', U2)[0]?.exitCode, 1);
    assert.equal(get(raw, 'dumpxml-public', U2)[0]?.exitCode, 0);
    assert.equal(get(raw, 'list', 'all')[0]?.stdout, `${U1}\n${U2}\n${U3}\n\n`);
    assert.ok(calls.every((c) => !c.includes(';') || c.startsWith('list --all --uuid; echo')));
  });

  it('passes a hostile URI as one word and runs nothing it prints', () => {
    const { raw } = run(`qemu:///system'; touch pwned; echo '$(touch pwned2)`);
    assert.equal(get(raw, 'version', '-')[0]?.stdout, `uri qemu:///system'; touch pwned; echo '$(touch pwned2)\n`);
    assert.deepEqual(readdirSync(work), []);
  });

  it('reports virsh missing as exit 127 and still reads the neighbour table', () => {
    const boundary = newBoundary();
    const r = spawnSync('/bin/sh', ['-c', buildInventoryScript('qemu:///system', boundary)], {
      cwd: work,
      env: { PATH: `${join(dir, 'nothing')}` },
      encoding: 'utf8',
    });
    const raw = parseInventoryOutput(r.stdout, boundary);
    assert.equal(raw.sections.find((s) => s.kind === 'list')?.exitCode, 127);
    assert.ok(raw.sections.some((s) => s.kind === 'neigh'));
  });
});
