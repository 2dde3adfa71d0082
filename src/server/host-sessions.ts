/**
 * The hypervisors a UI server talks to, each over one lazily connected SSH
 * chain shared by everything the dashboard does with that host: inventory,
 * browser consoles and RDP forwards. Emits `hosts` when a hop changes state
 * and `tunnels` when consoles or forwards come and go.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { vmView, type VmView } from '../console/vm-view.js';
import { rdpFileText } from '../console/rdp-file.js';
import { vmEndpointsOf } from '../console/vm-endpoints.js';
import { VmdeskError, isVmdeskError } from '../errors.js';
import { Forwarder } from '../forward/forwarder.js';
import type { VmTarget } from '../forward/types.js';
import { pinnedIps } from '../libvirt/dhcp-hosts.js';
import { changeListen, type ListenChange } from '../libvirt/edits.js';
import type { DomainUuid } from '../libvirt/domain-list.js';
import { readDomain, readInventory, type RemoteExec } from '../libvirt/remote.js';
import { guestAddress } from '../libvirt/vm-target.js';
import { SshChain, type ChainOptions, type HopState } from '../ssh/chain.js';
import type { HopSpec } from '../ssh/types.js';

/** A hypervisor the UI knows by name. */
export interface UiHost {
  name: string;
  /** The ssh destination as the user wrote it (shown in the dashboard). */
  dest: string;
  /** libvirt URI on the host. */
  uri: string;
  /** Resolves the hops (ssh_config, -J) when the host is first used. */
  planHops: () => Promise<HopSpec[]>;
  /** A chain the caller already connected (e.g. while checking a VM before serving); the sessions take it over. */
  connected?: SshChain;
}

export interface ErrorView {
  code: string;
  message: string;
  hint?: string;
}

export interface HostView {
  name: string;
  dest: string;
  hops: HopState[];
  error?: ErrorView;
}

export interface TunnelView {
  id: string;
  /** `rdp`: a loopback forward for a native client; `rdp-web`: RDP sessions in the browser (the RDCleanPath endpoint). */
  kind: 'rdp' | 'rdp-web' | 'console';
  host: string;
  /** The VM it reaches; `vm` is its name, for display. */
  uuid: DomainUuid;
  vm: string;
  address?: string;
  state: 'up' | 'connecting' | 'down';
  hops: HopState[];
  active: number;
  bytesIn: number;
  bytesOut: number;
}

export interface RdpForwardView {
  tunnelId: string;
  address: string;
  port: number;
  rdpFile: string;
}

/** How long a console channel opened for a page request waits for the page's WebSocket. */
const PREPARED_TTL_MS = 10_000;

export interface HostSessionsEvents {
  hosts: [];
  tunnels: [];
}

/** A console's channel and the bookkeeping to call when it ends. */
export interface ConsoleChannel {
  stream: Duplex;
  /** Count bytes moved (browser -> VM is out, VM -> browser is in). */
  count: (bytesIn: number, bytesOut: number) => void;
  release: () => void;
}

interface Session {
  host: UiHost;
  chain: SshChain | undefined;
  connecting: Promise<SshChain> | undefined;
  error: VmdeskError | undefined;
}

interface ConsoleTunnel {
  id: string;
  kind: 'console' | 'rdp-web';
  host: string;
  uuid: DomainUuid;
  vm: string;
  active: number;
  bytesIn: number;
  bytesOut: number;
}

interface RdpTunnel {
  id: string;
  host: string;
  uuid: DomainUuid;
  vm: string;
  forwarder: Forwarder;
  port: number;
}

/** An error as the HTTP API and the page banner show it. */
export function errorView(err: unknown): ErrorView {
  if (isVmdeskError(err)) return { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  return { code: 'INTERNAL', message: (err as Error)?.message ?? String(err) };
}

function tunnelState(hops: HopState[]): TunnelView['state'] {
  return hops.length > 0 && hops.every((h) => h.state === 'up') ? 'up' : hops.some((h) => h.state === 'connecting' || h.state === 'idle') ? 'connecting' : 'down';
}

export class HostSessions extends EventEmitter<HostSessionsEvents> {
  private readonly sessions = new Map<string, Session>();
  private readonly consoles = new Map<string, ConsoleTunnel>();
  private readonly rdps = new Map<string, RdpTunnel>();
  private readonly prepared = new Map<string, { promise: Promise<{ stream: Duplex; vm: string }>; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private closed = false;

  constructor(
    hosts: UiHost[],
    private readonly chainOptions: ChainOptions = {},
  ) {
    super();
    for (const host of hosts) this.sessions.set(host.name, { host, chain: undefined, connecting: undefined, error: undefined });
  }

  hostViews(): HostView[] {
    return [...this.sessions.values()].map((s) => ({
      name: s.host.name,
      dest: s.host.dest,
      hops: s.chain?.hopStates() ?? [],
      ...(s.error ? { error: errorView(s.error) } : {}),
    }));
  }

  private session(name: string): Session {
    const s = this.sessions.get(name);
    if (!s) throw new VmdeskError('USAGE', `no host named ${JSON.stringify(name)} in this UI`, { context: { host: name }, hint: `hosts: ${[...this.sessions.keys()].join(', ') || 'none'}` });
    return s;
  }

  /** The host's chain, connected on first use; a failed first connect is reported and tried again on the next use. */
  private async chainOf(name: string): Promise<SshChain> {
    const s = this.session(name);
    if (s.chain) return s.chain;
    s.connecting ??= (async () => {
      try {
        const given = s.host.connected;
        s.host.connected = undefined;
        const chain = given ?? new SshChain(await s.host.planHops(), this.chainOptions);
        chain.on('state', () => {
          this.emit('hosts');
          if (this.hasTunnelsOn(name)) this.emit('tunnels');
        });
        if (!given) await chain.connect();
        if (this.closed) {
          await chain.close();
          throw new VmdeskError('INTERRUPTED', 'the UI server is shutting down');
        }
        s.chain = chain;
        s.error = undefined;
        return chain;
      } catch (err) {
        s.error = isVmdeskError(err) ? err : new VmdeskError('INTERNAL', (err as Error).message, { cause: err });
        throw s.error;
      } finally {
        s.connecting = undefined;
        this.emit('hosts');
      }
    })();
    return s.connecting;
  }

  private hasTunnelsOn(host: string): boolean {
    for (const t of this.consoles.values()) if (t.host === host) return true;
    for (const t of this.rdps.values()) if (t.host === host) return true;
    return false;
  }

  private execOf(chain: SshChain): RemoteExec {
    return (command, opts) => chain.exec(command, opts);
  }

  /** Every VM of the host (one inventory round trip). */
  async listVms(name: string): Promise<VmView[]> {
    const s = this.session(name);
    const chain = await this.chainOf(name);
    const inv = await readInventory(this.execOf(chain), s.host.uri);
    const pinned = new Map(inv.networks.flatMap((n) => [...pinnedIps(n)]));
    return inv.domains.filter((d) => d.name !== undefined).map((d) => vmView(d, name, pinned));
  }

  // Every method below names a VM by its host and UUID (the API's identity, docs/ui.md): virsh reads
  // any other text as an ID, then a UUID, then a name, and could reach another VM.

  /** One VM, read live. */
  async readVm(name: string, uuid: DomainUuid): Promise<VmView> {
    const s = this.session(name);
    const chain = await this.chainOf(name);
    return vmView(await readDomain(this.execOf(chain), s.host.uri, uuid, { addresses: true }), name);
  }

  /** Make the VM's consoles listen on loopback only (dashboard's "Move to loopback"); see changeListen. */
  async moveToLoopback(name: string, uuid: DomainUuid, opts: { restart: boolean }): Promise<Omit<ListenChange, 'backupXml'>> {
    const s = this.session(name);
    const chain = await this.chainOf(name);
    const { backupXml: _secret, ...change } = await changeListen(this.execOf(chain), s.host.uri, uuid, '127.0.0.1', { restart: opts.restart, force: false });
    return change;
  }

  /** A channel to the VM's VNC console where the host's followed endpoints say it is now (autoport consoles move on restart), and the VM's name. */
  private async openConsoleChannel(name: string, uuid: DomainUuid): Promise<{ stream: Duplex; vm: string }> {
    const s = this.session(name);
    const chain = await this.chainOf(name);
    const t: VmTarget = { kind: 'vm', uri: s.host.uri, uuid, vm: uuid, service: 'vnc' };
    const { stream, name: vm } = await vmEndpointsOf(chain, name).open(t, (target) => chain.openChannel(target));
    return { stream, vm };
  }

  /**
   * The console page was just requested: look the console up and open its
   * channel now, while the browser loads the page, so its WebSocket finds the
   * channel ready (the VM's first bytes wait in it). The endpoint is followed by
   * libvirt's events or looked up now (vm-endpoints.ts); unused after
   * PREPARED_TTL_MS, it is closed.
   */
  prepareConsole(name: string, uuid: DomainUuid): void {
    const key = `${name}\u0000${uuid}`;
    if (this.closed || this.prepared.has(key) || !this.sessions.has(name)) return;
    const promise = this.openConsoleChannel(name, uuid);
    promise.catch(() => {});
    const timer = setTimeout(() => {
      if (this.prepared.get(key)?.promise !== promise) return;
      this.prepared.delete(key);
      promise.then((c) => c.stream.destroy(), () => {});
    }, PREPARED_TTL_MS);
    timer.unref();
    this.prepared.set(key, { promise, timer });
  }

  /** A channel to the VM's VNC console (the prepared one when the page's request made one), with its bookkeeping. */
  async openConsole(name: string, uuid: DomainUuid): Promise<ConsoleChannel> {
    this.session(name);
    const key = `${name}\u0000${uuid}`;
    const prepared = this.prepared.get(key);
    let opened: { stream: Duplex; vm: string } | undefined;
    if (prepared) {
      this.prepared.delete(key);
      clearTimeout(prepared.timer);
      opened = await prepared.promise.catch(() => undefined);
      // Closed meanwhile (the VM restarted, the chain dropped): look it up again.
      if (opened && (opened.stream.destroyed || opened.stream.readableEnded)) opened = undefined;
    }
    opened ??= await this.openConsoleChannel(name, uuid);
    const { stream, vm } = opened;
    let t = this.consoles.get(key);
    if (!t) {
      t = { id: `c${this.nextId++}`, kind: 'console', host: name, uuid, vm, active: 0, bytesIn: 0, bytesOut: 0 };
      this.consoles.set(key, t);
    }
    return { stream, ...this.track(key, t) };
  }

  /** Counts a session on `tunnel` (shown in the dashboard) until its release. */
  private track(key: string, tunnel: ConsoleTunnel): Omit<ConsoleChannel, 'stream'> {
    tunnel.active++;
    this.emit('tunnels');
    let released = false;
    return {
      count: (bytesIn, bytesOut) => {
        tunnel.bytesIn += bytesIn;
        tunnel.bytesOut += bytesOut;
      },
      release: () => {
        if (released) return;
        released = true;
        tunnel.active--;
        if (tunnel.active === 0) this.consoles.delete(key);
        this.emit('tunnels');
      },
    };
  }

  /**
   * Where the VM's RDP server is right now, and the VM's name: its IP found
   * by MAC (DHCP leases, then the neighbour table) on the hypervisor, port
   * 3389. Looked up for every browser RDP connection, never remembered (a
   * guest's lease moves).
   */
  async rdpTarget(name: string, uuid: DomainUuid): Promise<{ target: { kind: 'tcp'; host: string; port: number }; vm: string }> {
    const s = this.session(name);
    const chain = await this.chainOf(name);
    const d = await readDomain(this.execOf(chain), s.host.uri, uuid, { addresses: true });
    const a = guestAddress(d, name, ['DHCP leases', 'neighbour table']);
    return { target: { kind: 'tcp', host: a.ip, port: 3389 }, vm: d.name ?? uuid };
  }

  /**
   * A channel to the VM's RDP port for one browser RDP session (the RDCleanPath endpoint), with its
   * bookkeeping; `found` is this connection's own lookup when it was made already (its ticket's).
   */
  async openRdp(name: string, uuid: DomainUuid, found?: { target: { kind: 'tcp'; host: string; port: number }; vm: string }): Promise<ConsoleChannel & { serverAddr: string }> {
    const { target, vm } = found ?? (await this.rdpTarget(name, uuid));
    const stream = await (await this.chainOf(name)).openChannel(target);
    const key = `rdp-web\u0000${name}\u0000${uuid}`;
    let t = this.consoles.get(key);
    if (!t) {
      t = { id: `w${this.nextId++}`, kind: 'rdp-web', host: name, uuid, vm, active: 0, bytesIn: 0, bytesOut: 0 };
      this.consoles.set(key, t);
    }
    const serverAddr = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
    return { stream, serverAddr, ...this.track(key, t) };
  }

  /** Start (or reuse) a loopback forward to the guest's RDP port, its IP found by MAC and followed (vm-endpoints.ts). */
  async startRdp(name: string, uuid: DomainUuid): Promise<RdpForwardView> {
    const s = this.session(name);
    const key = `${name}\u0000${uuid}`;
    const existing = this.rdps.get(key);
    if (existing) return this.rdpView(existing);
    const chain = await this.chainOf(name);
    const exec = this.execOf(chain);
    // Refuse now, with the reason, rather than hand out a port whose every connection fails.
    const d = await readDomain(exec, s.host.uri, uuid, { addresses: true });
    guestAddress(d, name, ['DHCP leases', 'neighbour table']);
    const vm = d.name ?? uuid;
    const target: VmTarget = { kind: 'vm', uri: s.host.uri, uuid, vm, service: 'rdp' };
    const forwarder = new Forwarder([{ bindAddress: '127.0.0.1', localPort: 0, target, source: `rdp ${name}/${vm}` }], async (t, origin) =>
      t.kind === 'vm' ? (await vmEndpointsOf(chain, name).open(t, (c) => chain.openChannel(c, origin))).stream : chain.openChannel(t, origin),
    );
    const [stats] = await forwarder.listen();
    const raced = this.rdps.get(key);
    if (raced) {
      await forwarder.close();
      return this.rdpView(raced);
    }
    const tunnel: RdpTunnel = { id: `r${this.nextId++}`, host: name, uuid, vm, forwarder, port: stats!.localPort };
    forwarder.on('connection', () => this.emit('tunnels'));
    forwarder.on('connection-closed', () => this.emit('tunnels'));
    this.rdps.set(key, tunnel);
    this.emit('tunnels');
    return this.rdpView(tunnel);
  }

  private rdpView(t: RdpTunnel): RdpForwardView {
    return { tunnelId: t.id, address: `127.0.0.1:${t.port}`, port: t.port, rdpFile: `/api/hosts/${encodeURIComponent(t.host)}/vms/${t.uuid}/rdp-file` };
  }

  /** The .rdp file of a started forward and the VM's name, or undefined when none was started. */
  rdpFile(name: string, uuid: DomainUuid): { text: string; vm: string } | undefined {
    const t = this.rdps.get(`${name}\u0000${uuid}`);
    return t ? { text: rdpFileText(t.port), vm: t.vm } : undefined;
  }

  tunnelViews(): TunnelView[] {
    const views: TunnelView[] = [];
    for (const t of this.consoles.values()) {
      const hops = this.sessions.get(t.host)?.chain?.hopStates() ?? [];
      views.push({ id: t.id, kind: t.kind, host: t.host, uuid: t.uuid, vm: t.vm, state: tunnelState(hops), hops, active: t.active, bytesIn: t.bytesIn, bytesOut: t.bytesOut });
    }
    for (const t of this.rdps.values()) {
      const hops = this.sessions.get(t.host)?.chain?.hopStates() ?? [];
      const stats = t.forwarder.stats()[0]!;
      views.push({
        id: t.id,
        kind: 'rdp',
        host: t.host,
        uuid: t.uuid,
        vm: t.vm,
        address: `127.0.0.1:${t.port}`,
        state: tunnelState(hops),
        hops,
        active: stats.active,
        bytesIn: stats.bytesIn,
        bytesOut: stats.bytesOut,
      });
    }
    return views;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.prepared.values()) {
      clearTimeout(p.timer);
      p.promise.then((c) => c.stream.destroy(), () => {});
    }
    this.prepared.clear();
    await Promise.all([...this.rdps.values()].map((t) => t.forwarder.close()));
    this.rdps.clear();
    this.consoles.clear();
    await Promise.all([...this.sessions.values()].map((s) => s.chain?.close()));
  }
}
