/** Shared shapes of the forward layer. */
import type { DomainUuid } from '../libvirt/domain-list.js';

/** A fixed endpoint as seen from the last hop: a TCP address or a unix socket. */
export type ChannelTarget =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string };

/**
 * A VM's console or RDP port, looked up again on the hypervisor for every
 * new connection (autoport consoles move when a VM restarts; DHCP leases change).
 */
export interface VmTarget {
  kind: 'vm';
  /** libvirt URI on the hypervisor. */
  uri: string;
  /** The domain, as resolved once from its exact name: every lookup after that is by UUID. */
  uuid: DomainUuid;
  /** Its name, for messages and `ps` only. */
  vm: string;
  service: 'vnc' | 'rdp';
  /** RDP's port on the guest (default 3389). */
  port?: number;
  /** A fixed guest IP (`--ip`): skips discovery. */
  ip?: string;
}

/** Where a forwarded connection goes. */
export type ForwardTarget = ChannelTarget | VmTarget;

/** One `-L`-style forward: a local listener and its remote target. */
export interface ForwardSpec {
  /** Local address to bind; 127.0.0.1 unless the user asked otherwise. */
  bindAddress: string;
  /** Local port to listen on (1..65535). */
  localPort: number;
  target: ForwardTarget;
  /** The text the user gave, for messages. */
  source: string;
}
