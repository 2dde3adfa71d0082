/**
 * Load through one forward: 200 connections at once, each echoing 1 MiB of
 * random data through jump and kvmhost, checked by sha256 both ways; then
 * the forward's counters settle (no connection left active, none failed).
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labDown, labUp, type Lab } from './lab.js';
import { stopAll, vmdeskOk, waitForward } from './cli-contract.js';
import { hashedEchoAt } from './probes.js';

const CONNECTIONS = 200;
const BYTES_EACH = 1024 * 1024;

let lab: Lab;
before(async () => {
  lab = await labUp();
}, { timeout: 120_000 });
after(() => labDown(), { timeout: 60_000 });
afterEach(() => stopAll(lab), { timeout: 30_000 });

describe('load', () => {
  test(`${CONNECTIONS} concurrent connections x 1 MiB echo intact through one forward`, { timeout: 300_000 }, async () => {
    await vmdeskOk(lab, ['forward', '-d', 'kvmhost', '7700:127.0.0.1:7000']);
    const t0 = Date.now();
    const results = await Promise.allSettled(Array.from({ length: CONNECTIONS }, () => hashedEchoAt(lab, 7700, BYTES_EACH, 240_000)));
    const seconds = (Date.now() - t0) / 1000;
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`#${i}: ${(r.reason as Error).message}`] : []));
    assert.deepEqual(failures, [], `${failures.length} of ${CONNECTIONS} connections failed`);
    const corrupt = results.flatMap((r, i) =>
      r.status === 'fulfilled' && (r.value.bytesReceived !== BYTES_EACH || r.value.receivedSha256 !== r.value.sentSha256)
        ? [`#${i}: sent ${r.value.bytesSent} bytes, got back ${r.value.bytesReceived}${r.value.bytesReceived === r.value.bytesSent ? ' with a different sha256' : ''}`]
        : [],
    );
    assert.deepEqual(corrupt, [], `${corrupt.length} echoes came back different`);
    console.log(`# ${CONNECTIONS} x ${BYTES_EACH} bytes echoed in ${seconds.toFixed(1)} s (${((2 * CONNECTIONS * BYTES_EACH) / 1048576 / seconds).toFixed(1)} MiB/s both ways)`);

    const { forward } = await waitForward(lab, 7700, (f) => f.active === 0 && f.total >= CONNECTIONS, 'the forward to show no active connections', 15_000);
    assert.equal(forward.failed, 0);
    assert.ok(forward.bytesIn >= CONNECTIONS * BYTES_EACH, `bytesIn ${forward.bytesIn}`);
    assert.ok(forward.bytesOut >= CONNECTIONS * BYTES_EACH, `bytesOut ${forward.bytesOut}`);
  });
});
