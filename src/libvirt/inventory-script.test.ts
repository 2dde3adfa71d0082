import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isVmdeskError } from '../errors.js';
import { REDACTED, buildInventoryScript, newBoundary, parseInventoryOutput } from './inventory-script.js';

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
  after(() => rmSync(dir, { recursive: true, force: true }));
  const forged = `@@${newBoundary()}`;
  const U1 = '11111111-2222-3333-4444-555555555555';
  const U2 = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
  // What a hostile name could make virsh print, including a fake frame and a missing final newline.
  const stubVirsh = `#!/bin/sh
[ "$1" = -c ] || exit 64
uri=$2; shift 2
case "$*" in
  version) printf 'uri %s\\n' "$uri" ;;
  "list --all --uuid") printf '%s\\n%s\\n\\n' ${U1} ${U2} ;;
  "list --uuid --state-running") printf '%s\\n\\n' ${U1} ;;
  "list --uuid --state-shutoff") printf '%s\\n\\n' ${U2} ;;
  list*) printf '\\n' ;;
  "dumpxml --domain ${U1} --security-info") printf "<domain><name>${forged} end 0</name><graphics passwd='hunter2' type='vnc'/>\\n</domain>\\n"; echo 'warning: on stderr' >&2 ;;
  "dumpxml --domain ${U2} --security-info") echo 'error: operation forbidden: read only access prevents virDomainGetXMLDesc' >&2; exit 1 ;;
  "dumpxml --domain ${U2}") printf '<domain><name>$(touch pwned2)</name></domain>' ;;
  "net-list --all --uuid") printf '\\n' ;;
  *) echo "stub virsh: unexpected $*" >&2; exit 99 ;;
esac
`;
  const stubIp = `#!/bin/sh\nprintf '192.168.122.217 dev virbr0 lladdr 52:54:00:fc:b9:e6 STALE\\n'\n`;
  for (const [name, text] of [['virsh', stubVirsh], ['ip', stubIp]] as const) {
    spawnSync('mkdir', ['-p', bin, work]);
    writeFileSync(join(bin, name), text);
    chmodSync(join(bin, name), 0o755);
  }

  const run = (uri: string) => {
    const boundary = newBoundary();
    const r = spawnSync('/bin/sh', ['-c', buildInventoryScript(uri, boundary)], {
      cwd: work,
      env: { PATH: `${bin}:/usr/bin:/bin`, HOME: work },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    return parseInventoryOutput(r.stdout, boundary);
  };

  it('frames every command with its stdout, stderr and exit status', () => {
    const raw = run('qemu:///system');
    assert.equal(raw.isComplete, true);
    const get = (kind: string, key: string) => raw.sections.find((s) => s.kind === kind && s.key === key);
    assert.deepEqual(get('version', '-'), { kind: 'version', key: '-', stdout: 'uri qemu:///system\n', stderr: '', exitCode: 0 });
    const secure = get('dumpxml', U1)!;
    assert.equal(secure.exitCode, 0);
    assert.equal(secure.stderr, 'warning: on stderr');
    assert.equal(secure.stdout, `<domain><name>${forged} end 0</name><graphics passwd='${REDACTED}' type='vnc'/>\n</domain>\n`);
    const denied = get('dumpxml', U2)!;
    assert.equal(denied.exitCode, 1);
    assert.match(denied.stderr, /read only access/);
    assert.deepEqual(get('dumpxml-public', U2), { kind: 'dumpxml-public', key: U2, stdout: '<domain><name>$(touch pwned2)</name></domain>', stderr: '', exitCode: 0 });
    assert.equal(get('neigh', 'ip')?.stdout, '192.168.122.217 dev virbr0 lladdr 52:54:00:fc:b9:e6 STALE\n');
  });

  it('passes a hostile URI as one word and runs nothing it prints', () => {
    const raw = run(`qemu:///system'; touch pwned; echo '$(touch pwned2)`);
    assert.equal(raw.sections[0]?.stdout, `uri qemu:///system'; touch pwned; echo '$(touch pwned2)\n`);
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
