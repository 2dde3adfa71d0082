/**
 * A tunnel: a set of local listeners whose connections become channels of one
 * SSH chain. The chain is shared with every other tunnel to the same hops
 * (see ChainPool), so 101 forwards cost one connection per hop. A VM target
 * is found by the UUID its name was resolved to once (never by name: virsh
 * reads a name as an ID or a UUID first), from the host's followed endpoints
 * (console/vm-endpoints.ts), or looked up per connection when libvirt's
 * events are unavailable.
 */
import { Forwarder, type ForwardStats } from '../forward/forwarder.js';
import type { ForwardSpec } from '../forward/types.js';
import { vmEndpointsOf, type EndpointsStatus } from '../console/vm-endpoints.js';
import type { HopState, SshChain } from '../ssh/chain.js';

/** What `vmdesk ps --json` prints per tunnel. */
export interface TunnelInfo {
  id: string;
  dest: string;
  chain: string;
  state: 'up' | 'connecting' | 'down';
  since: number;
  pid: number;
  hops: HopState[];
  forwards: ForwardStats[];
  /** For a VM forward: how its new connections find the VM's endpoint. */
  endpoints?: EndpointsStatus;
}

export interface TunnelOptions {
  id: string;
  dest: string;
  chain: SshChain;
  specs: ForwardSpec[];
  autoPort?: boolean;
  log?: (line: string) => void;
}

export class Tunnel {
  readonly id: string;
  readonly dest: string;
  readonly chain: SshChain;
  readonly since = Date.now();
  private readonly forwarder: Forwarder;
  private readonly vmUri: string | undefined;

  constructor(opts: TunnelOptions) {
    this.id = opts.id;
    this.dest = opts.dest;
    this.chain = opts.chain;
    const chain = opts.chain;
    const vm = opts.specs.find((s) => s.target.kind === 'vm')?.target;
    this.vmUri = vm?.kind === 'vm' ? vm.uri : undefined;
    if (this.vmUri !== undefined) vmEndpointsOf(chain, opts.dest).follow(this.vmUri);
    this.forwarder = new Forwarder(
      opts.specs,
      async (target, origin) => target.kind === 'vm' ? (await vmEndpointsOf(chain, opts.dest).open(target, (t) => chain.openChannel(t, origin))).stream : chain.openChannel(target, origin),
      {
        autoPort: opts.autoPort ?? false,
        ...(opts.log ? { log: opts.log } : {}),
      },
    );
  }

  /** Bind every listener (all or nothing); the chain must be connected first so auth errors come before any bind. */
  async listen(): Promise<ForwardStats[]> {
    return this.forwarder.listen();
  }

  info(): TunnelInfo {
    const hops = this.chain.hopStates();
    const state = hops.every((h) => h.state === 'up') ? 'up' : hops.some((h) => h.state === 'connecting') ? 'connecting' : 'down';
    const since = Math.max(this.since, ...hops.map((h) => h.since));
    const info: TunnelInfo = { id: this.id, dest: this.dest, chain: this.chain.label, state, since, pid: process.pid, hops, forwards: this.forwarder.stats() };
    if (this.vmUri !== undefined) info.endpoints = vmEndpointsOf(this.chain, this.dest).status(this.vmUri);
    return info;
  }

  async close(): Promise<void> {
    await this.forwarder.close();
  }
}
