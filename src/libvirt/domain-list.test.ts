import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseDomainTable, parseDomstate, parseNameList, parseUuidList } from './domain-list.js';

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/libvirt/${name}`, import.meta.url), 'utf8');

const NAMES = ['win2016', 'win2019', 'rhel8', 'debian12', `x'; touch pwned; echo '`, '$(touch pwned2)', '-rf', 'win2012'];

describe('domain lists', () => {
  it('parseNameList keeps hostile names exactly', () => {
    assert.deepEqual(parseNameList(fixture('list-all-name.txt')), NAMES);
    assert.deepEqual(parseNameList(' padded name \n\n'), [' padded name ']);
  });

  it('parseUuidList reads list --uuid and skips anything else', () => {
    const all = parseUuidList(fixture('list-all-uuid.txt'));
    assert.equal(all.length, 8);
    assert.ok(all.every((u) => u.startsWith('766d6400-6c61-4b00-8000-')));
    assert.deepEqual(parseUuidList(fixture('list-uuid-shutoff.txt')), ['766d6400-6c61-4b00-8000-0000000000a3', '766d6400-6c61-4b00-8000-000000002012']);
    assert.deepEqual(parseUuidList('error: failed\nnot-a-uuid\n766D6400-6C61-4B00-8000-000000002016\n'), ['766d6400-6c61-4b00-8000-000000002016']);
  });

  it('parseDomainTable reads the human table, names with spaces and quotes included', () => {
    const rows = parseDomainTable(fixture('list-all.txt'));
    assert.deepEqual(rows.map((r) => r.name), NAMES);
    assert.deepEqual(rows[0], { id: 3, name: 'win2016', state: 'running' });
    assert.deepEqual(rows[4], { id: 7, name: `x'; touch pwned; echo '`, state: 'running' });
    assert.deepEqual(rows[7], { name: 'win2012', state: 'shut off' });
  });

  it('parseDomainTable: a name that ends like a state word still splits at the real state', () => {
    assert.deepEqual(parseDomainTable(' -    vm shut off   shut off\n 4    in shutdown vm   in shutdown\n'), [
      { name: 'vm shut off', state: 'shut off' },
      { id: 4, name: 'in shutdown vm', state: 'in shutdown' },
    ]);
  });

  it('parseDomstate reads state and reason', () => {
    assert.deepEqual(parseDomstate(fixture('domstate-running.txt')), { state: 'running', reason: 'booted' });
    assert.deepEqual(parseDomstate(fixture('domstate-shutoff.txt')), { state: 'shut off', reason: 'unknown' });
    assert.deepEqual(parseDomstate('paused\n'), { state: 'paused' });
  });
});
