/**
 * One SshChain per distinct hop list, shared by every tunnel that uses it and
 * closed when the last one lets go: the "one connection per hop chain,
 * however many forwards" rule lives here.
 */
import { SshChain, type ChainOptions } from '../ssh/chain.js';
import type { HopSpec } from '../ssh/types.js';

interface Entry {
  chain: SshChain;
  refs: number;
  ready: Promise<void>;
}

export class ChainPool {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly defaults: ChainOptions = {}) {}

  /** The key of a hop list: every field that changes how a hop is reached or authenticated. */
  static keyOf(hops: HopSpec[], agentSocket?: string): string {
    return JSON.stringify({ hops, agentSocket: agentSocket ?? null });
  }

  /** Get (or create and connect) the chain for these hops and take a reference to it. */
  async acquire(hops: HopSpec[], opts: ChainOptions): Promise<SshChain> {
    const key = ChainPool.keyOf(hops, opts.agentSocket);
    let entry = this.entries.get(key);
    if (!entry) {
      const chain = new SshChain(hops, { ...this.defaults, ...opts });
      entry = { chain, refs: 0, ready: chain.connect() };
      this.entries.set(key, entry);
      const created = entry;
      entry.ready.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    } else if (opts.prompter) {
      entry.chain.setPrompter(opts.prompter);
    }
    entry.refs++;
    try {
      await entry.ready;
    } catch (err) {
      entry.refs--;
      throw err;
    }
    return entry.chain;
  }

  /** Drop a reference; the chain closes when nobody holds it. */
  async release(chain: SshChain): Promise<void> {
    for (const [key, entry] of this.entries) {
      if (entry.chain !== chain) continue;
      entry.refs--;
      if (entry.refs <= 0) {
        this.entries.delete(key);
        await chain.close();
      }
      return;
    }
  }

  /** Whether a chain for this key (see keyOf) is held or connecting. */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  get size(): number {
    return this.entries.size;
  }

  async closeAll(): Promise<void> {
    const chains = [...this.entries.values()].map((e) => e.chain);
    this.entries.clear();
    await Promise.all(chains.map((c) => c.close()));
  }
}
