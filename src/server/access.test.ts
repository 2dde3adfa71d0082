import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { bearerOf, isCrossOriginFetch, TicketBook } from './access.js';

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('bearerOf', () => {
  it('is valid only for exactly the token, absent only without the header', () => {
    assert.equal(bearerOf(req({}), 'tok'), 'absent');
    assert.equal(bearerOf(req({ authorization: 'Bearer tok' }), 'tok'), 'valid');
    assert.equal(bearerOf(req({ authorization: 'bearer tok' }), 'tok'), 'valid', 'the scheme is case-insensitive (RFC 9110 s11.1)');
    for (const authorization of ['', 'Bearer', 'Bearer ', 'Bearer to', 'Bearer tokk', 'Basic tok', 'Bearer tok tok', 'tok']) {
      assert.equal(bearerOf(req({ authorization }), 'tok'), 'invalid', JSON.stringify(authorization));
    }
  });
});

describe('isCrossOriginFetch', () => {
  it('flags another site or origin, including another port (same-site), and lets absent, none and same-origin pass', () => {
    assert.equal(isCrossOriginFetch(req({})), false);
    assert.equal(isCrossOriginFetch(req({ 'sec-fetch-site': 'same-origin' })), false);
    assert.equal(isCrossOriginFetch(req({ 'sec-fetch-site': 'none' })), false);
    assert.equal(isCrossOriginFetch(req({ 'sec-fetch-site': 'same-site' })), true);
    assert.equal(isCrossOriginFetch(req({ 'sec-fetch-site': 'cross-site' })), true);
  });
});

describe('TicketBook', () => {
  const console1 = { kind: 'console', host: 'h', uuid: 'a' } as const;

  it('opens once, only what it was issued for', () => {
    const book = new TicketBook();
    const t = book.issue(console1);
    assert.equal(book.take(t, { kind: 'console', host: 'h', uuid: 'b' }), false, 'another console');
    assert.equal(book.take(t, console1), false, 'used up by the failed attempt too');
    const e = book.issue({ kind: 'events' });
    assert.equal(book.take(e, console1), false);
    const ok = book.issue(console1);
    assert.equal(book.take(ok, console1), true);
    assert.equal(book.take(ok, console1), false, 'single use');
    assert.equal(book.take(null, console1), false);
    assert.equal(book.take('made-up', console1), false);
  });

  it('expires after its lifetime', () => {
    let now = 1_000;
    const book = new TicketBook(() => now, 100);
    const early = book.issue({ kind: 'events' });
    const late = book.issue({ kind: 'events' });
    now += 99;
    assert.equal(book.take(early, { kind: 'events' }), true);
    now += 1;
    assert.equal(book.take(late, { kind: 'events' }), false);
  });

  it('keeps at most 1000 outstanding, dropping the oldest', () => {
    const book = new TicketBook();
    const first = book.issue({ kind: 'events' });
    for (let i = 0; i < 1000; i++) book.issue({ kind: 'events' });
    const last = book.issue({ kind: 'events' });
    assert.equal(book.take(first, { kind: 'events' }), false);
    assert.equal(book.take(last, { kind: 'events' }), true);
  });
});
