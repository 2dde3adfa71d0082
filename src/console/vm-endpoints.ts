/**
 * Where each VM forward's console or guest address is, kept per host without
 * a lookup on every connection: a found endpoint is reused until libvirt's own
 * events (one `virsh event --all --loop` per host and URI, over the chain)
 * say the domain changed. Used by the agent's tunnels and the dashboard's
 * consoles and RDP forwards alike.
 *
 * The invariant: a cached endpoint is only used while the event stream is
 * live, and only if no event arrived between the start of its lookup and its
 * end; any event that may name the domain (virsh prints names raw, so a line
 * can fit several) drops it before the next connection is served, a line that
 * cannot be read or a stream that ends drops everything. Until the host's
 * script has said it started virsh and then `settleMs` have passed (virsh
 * prints nothing when its callbacks are registered), and whenever the stream
 * is down, every connection is looked up as before.
 */
import type { Duplex } from 'node:stream';
import type { ChannelTarget, VmTarget } from '../forward/types.js';
import { domainEventsScript, mayName, movesEndpoints, parseDomainEventLine, syncCommand } from '../libvirt/domain-events.js';
import { resolveVmEndpoint } from '../libvirt/remote.js';
import type { SshChain } from '../ssh/chain.js';

/** How new connections of a VM forward find their endpoint, for `vmdesk ps`. */
export type EndpointsStatus = { mode: 'events' } | { mode: 'lookup'; reason: string };

/** A running event stream; `close` ends it (its `end` callback may still run). */
export interface EventStreamHandle {
  /** Resolves once every line the host printed before this call reached `line` (a barrier; domain-events.ts syncCommand). */
  sync(): Promise<void>;
  close(): void;
}

/** Starts one `virsh event` stream for `uri`: `line` per output line, `end` once, with why it stopped. Rejects when it cannot start. */
export type StartEventStream = (uri: string, on: { line: (line: string) => void; end: (why: string) => void }) => Promise<EventStreamHandle>;

/** Looks a VM target up on the hypervisor now: its endpoint and the domain's name (what its events call it). */
export type LookupEndpoint = (t: VmTarget) => Promise<{ target: ChannelTarget; name: string }>;

export interface VmEndpointsOptions {
  startEvents: StartEventStream;
  lookup: LookupEndpoint;
  /** How long a new stream must run, after the host said it started virsh, before its silence is trusted. */
  settleMs?: number;
  /** A stream whose host has not said it started virsh by then is given up (and tried again later). */
  startTimeoutMs?: number;
  /** A stream that does not answer a sync by then is taken as broken. */
  syncTimeoutMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Guest addresses (RDP) are also dropped after this long: a lease can change without a domain event. */
  addressMaxAgeMs?: number;
  now?: () => number;
}

interface Watcher {
  uri: string;
  state: 'starting' | 'settling' | 'live' | 'down';
  reason: string;
  /** Bumped on every start: callbacks of an older stream are ignored. */
  generation: number;
  handle: EventStreamHandle | undefined;
  timer: NodeJS.Timeout | undefined;
  failures: number;
}

interface Entry {
  uri: string;
  name: string;
  target: ChannelTarget;
  isAddress: boolean;
  foundAtMs: number;
}

function keyOf(t: VmTarget): string {
  return [t.uri, t.service, t.uuid, t.port ?? ''].join('\u0000');
}

/** One host's VM endpoints, followed by its libvirt events. */
export class VmEndpoints {
  private readonly opts: Required<VmEndpointsOptions>;
  private readonly watchers = new Map<string, Watcher>();
  private readonly entries = new Map<string, Entry>();
  /** Counts events that may move an endpoint, per URI: a lookup that saw one change is not kept. */
  private readonly changes = new Map<string, number>();
  private isChainDown = false;
  private closed = false;

  constructor(opts: VmEndpointsOptions) {
    this.opts = { settleMs: 1500, startTimeoutMs: 15_000, syncTimeoutMs: 10_000, backoffInitialMs: 1000, backoffMaxMs: 30_000, addressMaxAgeMs: 30_000, now: Date.now, ...opts };
  }

  /** Where `t` is now and the domain's name: the followed endpoint when the events vouch for it, else a fresh lookup. */
  async find(t: VmTarget): Promise<{ target: ChannelTarget; name: string }> {
    const w = this.watch(t.uri);
    const key = keyOf(t);
    if (w.state === 'live') {
      const e = this.validEntry(key);
      if (e) return { target: e.target, name: e.name };
      this.entries.delete(key);
    }
    const wasLive = w.state === 'live';
    const generation = w.generation;
    const seen = this.changes.get(t.uri) ?? 0;
    const found = await this.opts.lookup(t);
    const unchanged = w.state === 'live' && w.generation === generation && (this.changes.get(t.uri) ?? 0) === seen;
    if (wasLive && unchanged && !this.closed) {
      this.entries.set(key, { uri: t.uri, name: found.name, target: found.target, isAddress: t.service === 'rdp' && !t.ip, foundAtMs: this.opts.now() });
    }
    return found;
  }

  /**
   * Open a channel to `t`. A followed endpoint is opened at once, and in the
   * same round trip the stream is synced (a barrier behind every event the
   * host had printed): the channel is handed out only if no event dropped the
   * endpoint meanwhile, so a VM restarted a moment ago is never reached at its
   * old port. Otherwise, or when the endpoint refuses, it is looked up afresh.
   */
  async open(t: VmTarget, openChannel: (target: ChannelTarget) => Promise<Duplex>): Promise<{ stream: Duplex; name: string }> {
    const key = keyOf(t);
    const w = this.watch(t.uri);
    const entry = w.state === 'live' ? this.validEntry(key) : undefined;
    const handle = w.handle;
    if (entry && handle) {
      const generation = w.generation;
      const [opened, synced] = await Promise.allSettled([openChannel(entry.target), this.sync(w, handle)]);
      const stillTrue = synced.status === 'fulfilled' && w.generation === generation && this.entries.get(key) === entry;
      if (stillTrue && opened.status === 'fulfilled') return { stream: opened.value, name: entry.name };
      if (opened.status === 'fulfilled') opened.value.destroy();
      if (this.entries.get(key) === entry) this.entries.delete(key);
    }
    const found = await this.find(t);
    return { stream: await openChannel(found.target), name: found.name };
  }

  private validEntry(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e && (!e.isAddress || this.opts.now() - e.foundAtMs < this.opts.addressMaxAgeMs)) return e;
    return undefined;
  }

  private async sync(w: Watcher, handle: EventStreamHandle): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const generation = w.generation;
    try {
      await Promise.race([
        handle.sync(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('the event stream stopped answering')), this.opts.syncTimeoutMs);
        }),
      ]);
    } catch (err) {
      if (w.generation === generation && !this.closed) this.onEnd(w, (err as Error).message);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Start following `uri`'s events now (a forward was opened), so its first connections find the stream settled. */
  follow(uri: string): void {
    this.watch(uri);
  }

  /** How connections to forwards on `uri` find their endpoint right now. */
  status(uri: string): EndpointsStatus {
    const w = this.watchers.get(uri);
    if (!w) return { mode: 'lookup', reason: 'events not started yet' };
    return w.state === 'live' ? { mode: 'events' } : { mode: 'lookup', reason: w.reason };
  }

  /** The chain dropped: nothing seen from now on can be trusted until it is back. */
  chainDown(): void {
    this.isChainDown = true;
    for (const w of this.watchers.values()) this.stop(w, 'the SSH chain is down');
  }

  /** The chain is back: start every stream again now. */
  chainUp(): void {
    this.isChainDown = false;
    for (const w of this.watchers.values()) {
      if (w.state !== 'down') continue;
      clearTimeout(w.timer);
      w.failures = 0;
      this.start(w);
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) this.stop(w, 'closed');
    this.watchers.clear();
  }

  private watch(uri: string): Watcher {
    let w = this.watchers.get(uri);
    if (!w) {
      w = { uri, state: 'starting', reason: 'events starting', generation: 0, handle: undefined, timer: undefined, failures: 0 };
      this.watchers.set(uri, w);
      if (!this.closed) this.start(w);
    }
    return w;
  }

  private start(w: Watcher): void {
    const generation = ++w.generation;
    w.state = 'starting';
    w.reason = 'events starting';
    const current = () => w.generation === generation && !this.closed;
    this.opts
      .startEvents(w.uri, {
        line: (line) => {
          if (current()) this.onLine(w, line);
        },
        end: (why) => {
          if (current()) this.onEnd(w, why);
        },
      })
      .then(
        (handle) => {
          if (!current()) {
            handle.close();
            return;
          }
          w.handle = handle;
          if (w.state !== 'starting') return;
          w.timer = setTimeout(() => {
            if (current() && w.state === 'starting') this.onEnd(w, `the host did not start virsh event within ${this.opts.startTimeoutMs / 1000} s`);
          }, this.opts.startTimeoutMs);
          w.timer.unref?.();
        },
        (err: unknown) => {
          if (current()) this.onEnd(w, (err as Error).message);
        },
      );
  }

  private onLine(w: Watcher, raw: string): void {
    const e = parseDomainEventLine(raw);
    if (e.kind === 'blank' || e.kind === 'summary' || e.kind === 'sync') return;
    if (e.kind === 'started') {
      if (w.state !== 'starting') return;
      clearTimeout(w.timer);
      w.state = 'settling';
      w.reason = 'events starting';
      w.timer = setTimeout(() => {
        if (w.state !== 'settling') return;
        w.state = 'live';
        w.failures = 0;
      }, this.opts.settleMs);
      w.timer.unref?.();
      return;
    }
    if (e.kind === 'exit') {
      this.onEnd(w, `virsh event exited with status ${e.code}`);
      return;
    }
    if (e.kind === 'domain' && !movesEndpoints(e)) return;
    this.changes.set(w.uri, (this.changes.get(w.uri) ?? 0) + 1);
    for (const [key, entry] of this.entries) {
      if (entry.uri === w.uri && (e.kind === 'unknown' || mayName(e, entry.name))) this.entries.delete(key);
    }
  }

  private onEnd(w: Watcher, why: string): void {
    this.stop(w, why);
    if (this.closed || this.isChainDown) return;
    const delay = Math.min(this.opts.backoffMaxMs, this.opts.backoffInitialMs * 2 ** w.failures);
    w.failures++;
    w.timer = setTimeout(() => {
      if (!this.closed && !this.isChainDown && w.state === 'down') this.start(w);
    }, delay);
    w.timer.unref?.();
  }

  /** Forget everything `w` vouched for, before anything else can read it. */
  private stop(w: Watcher, why: string): void {
    w.generation++;
    w.state = 'down';
    w.reason = why;
    clearTimeout(w.timer);
    w.timer = undefined;
    w.handle?.close();
    w.handle = undefined;
    this.changes.set(w.uri, (this.changes.get(w.uri) ?? 0) + 1);
    for (const [key, entry] of this.entries) if (entry.uri === w.uri) this.entries.delete(key);
  }
}

/** Why a stream ended, from what virsh said last on stderr. */
function endReason(code: number | null, stderr: string): string {
  const lastError = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('error:'))
    .pop();
  if (lastError) return `virsh: ${lastError.slice('error:'.length).trim()}`;
  if (code === 127) return 'virsh not found on the host';
  return code === null ? 'the event stream closed' : `virsh event exited with status ${code}`;
}

/** A StartEventStream over a chain: `virsh event --all --loop` through SshChain.execStream, read line by line. */
export function chainEventStream(chain: SshChain): StartEventStream {
  return async (uri, on) => {
    const p = await chain.execStream(domainEventsScript(uri));
    let pending = '';
    let stderr = '';
    let ended = false;
    let nextSync = 1;
    const syncs = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
    const close = () => {
      try {
        p.close();
      } catch {
        // The chain under it is gone already: so is the channel.
      }
    };
    const end = (why: string) => {
      if (ended) return;
      ended = true;
      close();
      for (const s of syncs.values()) s.reject(new Error(why));
      syncs.clear();
      on.end(why);
    };
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        // The line first: a sync resolves only after every line before it was handled.
        on.line(line);
        const e = parseDomainEventLine(line);
        if (e.kind === 'sync') {
          syncs.get(e.id)?.resolve();
          syncs.delete(e.id);
        }
      }
    });
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    p.stdout.on('end', () => end(endReason(null, stderr)));
    void p.closed.then(({ code }) => end(endReason(code, stderr)));
    return {
      sync: () =>
        new Promise<void>((resolve, reject) => {
          if (ended) {
            reject(new Error('the event stream ended'));
            return;
          }
          const id = nextSync++;
          syncs.set(id, { resolve, reject });
          p.write(syncCommand(id));
        }),
      close,
    };
  };
}

const byChain = new WeakMap<SshChain, VmEndpoints>();

/** The endpoints of the chain's host (one per chain, shared by every forward over it), restarted with the chain. */
export function vmEndpointsOf(chain: SshChain, host: string): VmEndpoints {
  let e = byChain.get(chain);
  if (e) return e;
  const exec = (script: string, o?: { stdin?: string | Buffer }) => chain.exec(script, o);
  const stream = chainEventStream(chain);
  const endpoints = new VmEndpoints({
    startEvents: async (uri, on) => {
      if (chain.isClosed()) {
        queueMicrotask(() => endpoints.close());
        throw new Error('the SSH chain is closed');
      }
      return stream(uri, on);
    },
    lookup: (t) => resolveVmEndpoint(exec, t, host),
  });
  chain.on('down', () => endpoints.chainDown());
  chain.on('up', () => endpoints.chainUp());
  chain.on('closed', () => endpoints.close());
  e = endpoints;
  byChain.set(chain, e);
  return e;
}
