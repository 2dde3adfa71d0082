import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmdeskError } from '../errors.js';
import { ensureRuntimeDir } from './runtime-dir.js';

const modeOf = (p: string) => statSync(p).mode & 0o777;

describe('ensureRuntimeDir', () => {
  it('creates a missing directory with mode 0700', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'vmdesk-rt-')), 'new', 'agent');
    assert.equal(ensureRuntimeDir({ VMDESK_RUNTIME_DIR: dir }), dir);
    assert.equal(modeOf(dir), 0o700);
  });

  it('accepts an existing private directory as it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmdesk-rt-'));
    chmodSync(dir, 0o700);
    assert.equal(ensureRuntimeDir({ VMDESK_RUNTIME_DIR: dir }), dir);
    assert.equal(modeOf(dir), 0o700);
  });

  it('refuses an existing directory open to others and leaves its mode alone (VMDESK_RUNTIME_DIR=$HOME)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmdesk-rt-'));
    chmodSync(dir, 0o755);
    assert.throws(
      () => ensureRuntimeDir({ VMDESK_RUNTIME_DIR: dir }),
      (e: unknown) => isVmdeskError(e, 'AGENT_UNAVAILABLE'),
    );
    assert.equal(modeOf(dir), 0o755);
  });
});
