import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { BodyError, checkBody, readJsonBody } from './request-body.js';

const SHAPE = { purpose: { type: 'string', isRequired: true, oneOf: ['events', 'console'] }, vm: { type: 'string', maxLength: 8 }, restart: { type: 'boolean' } } as const;

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof BodyError) return e.code;
    throw e;
  }
  return undefined;
}

function fakeRequest(chunks: string[], headers: Record<string, string> = {}): IncomingMessage {
  return Object.assign(Readable.from(chunks.map((c) => Buffer.from(c))), { headers }) as unknown as IncomingMessage;
}

describe('checkBody', () => {
  it('accepts an object of the declared fields and types', () => {
    assert.deepEqual(checkBody({ purpose: 'console', vm: 'win2016', restart: true }, SHAPE), { purpose: 'console', vm: 'win2016', restart: true });
    assert.deepEqual(checkBody({ purpose: 'events' }, SHAPE), { purpose: 'events' });
  });

  it('refuses what is not an object of them, each with UI_BODY_INVALID', () => {
    for (const v of [null, [], ['events'], 'events', 7, true, {}, { purpose: 1 }, { purpose: 'all' }, { purpose: 'events', extra: 1 }, { purpose: 'events', vm: null }, { purpose: 'events', vm: 'x'.repeat(9) }, { purpose: 'events', restart: 'yes' }]) {
      assert.equal(codeOf(() => checkBody(v, SHAPE)), 'UI_BODY_INVALID', JSON.stringify(v));
    }
  });

  it('does not take inherited keys for fields (a JSON "__proto__" is an own key, and unknown)', () => {
    assert.equal(codeOf(() => checkBody(JSON.parse('{"purpose": "events", "__proto__": {"restart": true}}'), SHAPE)), 'UI_BODY_INVALID');
  });
});

describe('readJsonBody', () => {
  it('parses JSON, and reads an empty body as {}', async () => {
    assert.deepEqual(await readJsonBody(fakeRequest(['{"a"', ': 1}'])), { a: 1 });
    assert.deepEqual(await readJsonBody(fakeRequest([])), {});
    assert.equal(await readJsonBody(fakeRequest(['null'])), null);
  });

  it('refuses text that is not JSON, and a body over the limit, declared or sent', async () => {
    await assert.rejects(readJsonBody(fakeRequest(['{'])), (e: unknown) => e instanceof BodyError && e.code === 'UI_BODY_NOT_JSON' && e.status === 400);
    await assert.rejects(readJsonBody(fakeRequest(['x'.repeat(10), 'x'.repeat(10)]), 16), (e: unknown) => e instanceof BodyError && e.code === 'UI_BODY_TOO_LARGE' && e.status === 413);
    await assert.rejects(readJsonBody(fakeRequest([], { 'content-length': '17' }), 16), (e: unknown) => e instanceof BodyError && e.code === 'UI_BODY_TOO_LARGE');
    const cut = Object.assign(
      new Readable({
        read() {
          this.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
        },
      }),
      { headers: {} },
    ) as unknown as IncomingMessage;
    await assert.rejects(readJsonBody(cut), (e: unknown) => e instanceof BodyError && e.code === 'UI_BODY_NOT_JSON');
  });
});
