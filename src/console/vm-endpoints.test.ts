import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { beforeEach, describe, it, mock } from 'node:test';
import type { ChannelTarget, VmTarget } from '../forward/types.js';
import { asDomainUuid } from '../libvirt/domain-list.js';
import { VmEndpoints, type StartEventStream } from './vm-endpoints.js';

const URI = 'qemu:///system';
const win2019: VmTarget = { kind: 'vm', uri: URI, uuid: asDomainUuid('766d6400-6c61-4b00-8000-000000002019'), vm: 'win2019', service: 'vnc' };
const rhel8: VmTarget = { kind: 'vm', uri: URI, uuid: asDomainUuid('766d6400-6c61-4b00-8000-000000000008'), vm: 'rhel8', service: 'vnc' };
const rhel8Rdp: VmTarget = { ...rhel8, service: 'rdp' };
const SETTLE_MS = 1500;

/** An event source and a hypervisor the test drives by hand: no sockets, no timers of its own. */
function harness() {
  const ports = new Map<string, number>([
    [win2019.uuid, 5901],
    [rhel8.uuid, 5902],
  ]);
  const names = new Map<string, string>([
    [win2019.uuid, 'win2019'],
    [rhel8.uuid, 'rhel8'],
  ]);
  const streams: { uri: string; line: (l: string) => void; end: (why: string) => void; closed: boolean; holdSyncs: boolean; syncs: (() => void)[] }[] = [];
  let refuse: string | undefined;
  const lookups: string[] = [];
  let gate: Promise<void> | undefined;
  const startEvents: StartEventStream = async (uri, on) => {
    if (refuse !== undefined) throw new Error(refuse);
    const s = { uri, ...on, closed: false, holdSyncs: false, syncs: [] as (() => void)[] };
    streams.push(s);
    return { sync: () => new Promise<void>((r) => (s.holdSyncs ? s.syncs.push(r) : setImmediate(r))), close: () => void (s.closed = true) };
  };
  const endpoints = new VmEndpoints({
    startEvents,
    lookup: async (t) => {
      lookups.push(t.uuid);
      const port = ports.get(t.uuid)!;
      const name = names.get(t.uuid)!;
      if (gate) await gate;
      const target: ChannelTarget = t.service === 'rdp' ? { kind: 'tcp', host: `192.168.122.${port - 5800}`, port: 3389 } : { kind: 'tcp', host: '127.0.0.1', port };
      return { target, name };
    },
    settleMs: SETTLE_MS,
    backoffInitialMs: 1000,
    addressMaxAgeMs: 30_000,
    now: () => Date.now(),
  });
  const flush = () => new Promise<void>((r) => setImmediate(r));
  const live = async () => {
    endpoints.follow(URI);
    await flush();
    streams[streams.length - 1]!.line('vmdesk-events-started');
    mock.timers.tick(SETTLE_MS);
    assert.deepEqual(endpoints.status(URI), { mode: 'events' });
  };
  const last = () => streams[streams.length - 1]!;
  return {
    endpoints, ports, names, streams, lookups, flush, live, last,
    refuseWith: (why: string | undefined) => void (refuse = why),
    hold: () => {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

const port = (t: ChannelTarget) => (t.kind === 'tcp' ? t.port : -1);

describe('VmEndpoints', () => {
  beforeEach(() => {
    mock.timers.reset();
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  });

  it('looks up every connection until the stream has settled, then reuses the endpoint', async () => {
    const h = harness();
    h.endpoints.follow(URI);
    assert.deepEqual(h.endpoints.status(URI), { mode: 'lookup', reason: 'events starting' });
    await h.endpoints.find(win2019);
    await h.endpoints.find(win2019);
    assert.equal(h.lookups.length, 2);
    await h.flush();
    mock.timers.tick(SETTLE_MS);
    assert.deepEqual(h.endpoints.status(URI), { mode: 'lookup', reason: 'events starting' });
    h.last().line('vmdesk-events-started');
    await h.endpoints.find(win2019);
    assert.equal(h.lookups.length, 3);
    mock.timers.tick(SETTLE_MS);
    assert.deepEqual(h.endpoints.status(URI), { mode: 'events' });
    await h.endpoints.find(win2019);
    const again = await h.endpoints.find(win2019);
    assert.equal(h.lookups.length, 4);
    assert.deepEqual(again, { target: { kind: 'tcp', host: '127.0.0.1', port: 5901 }, name: 'win2019' });
  });

  it('a restart onto another autoport: the stop event drops the old port before the next connection', async () => {
    const h = harness();
    await h.live();
    assert.equal(port((await h.endpoints.find(win2019)).target), 5901);
    // win2019 stops; rhel8 may take 5901 now; win2019 comes back on 5903.
    h.last().line("event 'lifecycle' for domain 'win2019': Stopped Destroyed");
    h.ports.set(win2019.uuid, 5903);
    h.ports.set(rhel8.uuid, 5901);
    assert.equal(port((await h.endpoints.find(win2019)).target), 5903);
    assert.equal(h.lookups.length, 2);
  });

  it('an event during a lookup keeps that answer out of the cache', async () => {
    const h = harness();
    await h.live();
    const release = h.hold();
    const pending = h.endpoints.find(win2019);
    await h.flush();
    h.last().line("event 'lifecycle' for domain 'win2019': Started Booted");
    release();
    assert.equal(port((await pending).target), 5901);
    h.ports.set(win2019.uuid, 5904);
    assert.equal(port((await h.endpoints.find(win2019)).target), 5904);
  });

  it("keeps other domains' entries, and ignores graphics events (each connection sends one)", async () => {
    const h = harness();
    await h.live();
    await h.endpoints.find(win2019);
    await h.endpoints.find(rhel8);
    h.last().line("event 'lifecycle' for domain 'rhel8': Stopped Destroyed");
    h.last().line("event 'graphics' for domain 'win2019': connected local[IPv4 127.0.0.1 5901] remote[IPv4 127.0.0.1 40112] none");
    await h.endpoints.find(win2019);
    await h.endpoints.find(rhel8);
    assert.deepEqual(h.lookups, [win2019.uuid, rhel8.uuid, rhel8.uuid]);
  });

  it('a name that another name starts with drops both (virsh prints names raw)', async () => {
    const h = harness();
    h.names.set(rhel8.uuid, "win2019': Stopped Destroyed");
    await h.live();
    await h.endpoints.find(win2019);
    await h.endpoints.find(rhel8);
    h.last().line("event 'lifecycle' for domain 'win2019': Stopped Destroyed': Started Booted");
    await h.endpoints.find(win2019);
    await h.endpoints.find(rhel8);
    assert.equal(h.lookups.length, 4);
  });

  it('a line it cannot read drops everything', async () => {
    const h = harness();
    await h.live();
    await h.endpoints.find(win2019);
    await h.endpoints.find(rhel8);
    h.last().line("event 'lifecycle' for domain 'half");
    await h.endpoints.find(win2019);
    await h.endpoints.find(rhel8);
    assert.equal(h.lookups.length, 4);
  });

  it('a stream that ends: everything dropped, per-connection lookups with the reason, restarted after a backoff', async () => {
    const h = harness();
    await h.live();
    await h.endpoints.find(win2019);
    h.last().line('vmdesk-events-exit 1');
    assert.deepEqual(h.endpoints.status(URI), { mode: 'lookup', reason: 'virsh event exited with status 1' });
    assert.equal(h.streams[0]!.closed, true);
    await h.endpoints.find(win2019);
    await h.endpoints.find(win2019);
    assert.equal(h.lookups.length, 3);
    mock.timers.tick(1000);
    assert.equal(h.streams.length, 2);
    await h.flush();
    h.last().line('vmdesk-events-started');
    mock.timers.tick(SETTLE_MS);
    assert.deepEqual(h.endpoints.status(URI), { mode: 'events' });
    // The old stream's late lines are ignored.
    h.streams[0]!.end('late');
    assert.deepEqual(h.endpoints.status(URI), { mode: 'events' });
  });

  it('a stream that cannot start (permissions, old libvirt): lookups per connection, saying why', async () => {
    const h = harness();
    h.refuseWith('virsh: operation not permitted');
    h.endpoints.follow(URI);
    await h.flush();
    assert.deepEqual(h.endpoints.status(URI), { mode: 'lookup', reason: 'virsh: operation not permitted' });
    await h.endpoints.find(win2019);
    await h.endpoints.find(win2019);
    assert.equal(h.lookups.length, 2);
  });

  it('a host that never says it started virsh (a shell that waits for EOF): given up, per-connection lookups', async () => {
    const h = harness();
    h.endpoints.follow(URI);
    await h.flush();
    mock.timers.tick(15_000);
    assert.deepEqual(h.endpoints.status(URI), { mode: 'lookup', reason: 'the host did not start virsh event within 15 s' });
    assert.equal(h.streams[0]!.closed, true);
    await h.endpoints.find(win2019);
    await h.endpoints.find(win2019);
    assert.equal(h.lookups.length, 2);
  });

  it('the chain dropping drops everything; its return restarts the stream at once', async () => {
    const h = harness();
    await h.live();
    await h.endpoints.find(win2019);
    h.endpoints.chainDown();
    assert.deepEqual(h.endpoints.status(URI), { mode: 'lookup', reason: 'the SSH chain is down' });
    mock.timers.tick(60_000);
    assert.equal(h.streams.length, 1);
    h.endpoints.chainUp();
    assert.equal(h.streams.length, 2);
    await h.endpoints.find(win2019);
    assert.equal(h.lookups.length, 2);
  });

  it('guest addresses are also looked up again after their maximum age', async () => {
    const h = harness();
    await h.live();
    await h.endpoints.find(rhel8Rdp);
    await h.endpoints.find(rhel8Rdp);
    assert.equal(h.lookups.length, 1);
    mock.timers.tick(30_000);
    await h.endpoints.find(rhel8Rdp);
    assert.equal(h.lookups.length, 2);
  });

  it('open: an event that arrives before the sync answer keeps the old port from the connection', async () => {
    const h = harness();
    await h.live();
    await h.endpoints.find(win2019);
    h.last().holdSyncs = true;
    const tried: number[] = [];
    const streams: Duplex[] = [];
    const opening = h.endpoints.open(win2019, async (t) => {
      tried.push(port(t));
      const d = new Duplex({ read() {} });
      streams.push(d);
      return d;
    });
    await h.flush();
    // win2019 restarted a moment ago: its stop event was on the wire when the connection came.
    h.last().line("event 'lifecycle' for domain 'win2019': Stopped Destroyed");
    h.ports.set(win2019.uuid, 5903);
    h.last().holdSyncs = false;
    for (const r of h.last().syncs) r();
    const { stream } = await opening;
    assert.deepEqual(tried, [5901, 5903]);
    assert.equal(streams[0]!.destroyed, true);
    assert.equal(stream, streams[1]);
    stream.destroy();
  });

  it('open: a sync that is never answered ends the stream and looks up', async () => {
    const h = harness();
    await h.live();
    await h.endpoints.find(win2019);
    h.last().holdSyncs = true;
    const opening = h.endpoints.open(win2019, async () => new Duplex({ read() {} }));
    await h.flush();
    mock.timers.tick(10_000);
    const { stream } = await opening;
    stream.destroy();
    assert.deepEqual(h.endpoints.status(URI), { mode: 'lookup', reason: 'the event stream stopped answering' });
    assert.equal(h.lookups.length, 2);
  });

  it('open: a followed endpoint that refuses the channel is looked up once more', async () => {
    const h = harness();
    await h.live();
    await h.endpoints.find(win2019);
    h.ports.set(win2019.uuid, 5905);
    const tried: number[] = [];
    const { stream } = await h.endpoints.open(win2019, async (t) => {
      tried.push(port(t));
      if (port(t) !== 5905) throw new Error('refused');
      return new Duplex({ read() {} });
    });
    stream.destroy();
    assert.deepEqual(tried, [5901, 5905]);
  });
});
