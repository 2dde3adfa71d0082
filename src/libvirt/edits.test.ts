import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKUP_DIR, backupFileName, backupScript } from './edits.js';

const UUID = '766d6400-6c61-4b00-8000-000000002016';

describe('backupFileName', () => {
  it('is the UUID, the time to the second and a random part, different for two backups in the same second', () => {
    const now = new Date('2026-12-04T20:05:05.123Z');
    const a = backupFileName(UUID, now);
    const b = backupFileName(UUID, now);
    assert.match(a, /^766d6400-6c61-4b00-8000-000000002016-20261204T200505Z-[0-9a-f]{8}\.xml$/);
    assert.notEqual(a, b);
    assert.equal(backupFileName(`../${UUID}/x`, now, Buffer.from('00ff00ff', 'hex')), `${UUID}-20261204T200505Z-00ff00ff.xml`);
  });
});

describe('backupScript under /bin/sh', () => {
  let home: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'vmdesk-backup-'));
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  const backup = (name: string, text: string) => {
    const r = spawnSync('/bin/sh', ['-c', backupScript(name)], { input: text, env: { PATH: '/usr/bin:/bin', HOME: home } });
    return { code: r.status, path: r.stdout.toString().trim(), stderr: r.stderr.toString() };
  };

  it('writes a new 0600 file and prints its path', () => {
    const r = backup(backupFileName(UUID), '<domain>one</domain>\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.path.startsWith(join(home, BACKUP_DIR) + '/'), true);
    assert.equal(readFileSync(r.path, 'utf8'), '<domain>one</domain>\n');
    assert.equal(statSync(r.path).mode & 0o777, 0o600);
  });

  it('refuses to write over an existing backup, which stays as it was', () => {
    const name = backupFileName(UUID);
    const first = backup(name, 'first\n');
    assert.equal(first.code, 0, first.stderr);
    const second = backup(name, 'second\n');
    assert.notEqual(second.code, 0);
    assert.equal(second.path, '');
    assert.equal(readFileSync(first.path, 'utf8'), 'first\n');
  });

  it('keeps two backups of one VM made in the same second', () => {
    const now = new Date();
    const before = readdirSync(join(home, BACKUP_DIR)).length;
    const a = backup(backupFileName(UUID, now), 'a\n');
    const b = backup(backupFileName(UUID, now), 'b\n');
    assert.deepEqual([a.code, b.code], [0, 0]);
    assert.notEqual(a.path, b.path);
    assert.deepEqual([readFileSync(a.path, 'utf8'), readFileSync(b.path, 'utf8')], ['a\n', 'b\n']);
    assert.equal(readdirSync(join(home, BACKUP_DIR)).length, before + 2);
  });
});
