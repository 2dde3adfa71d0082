// The forward layer: `-L`-style port specs and the local listeners that turn each connection into a lazily opened channel.
// Must not import cli/, server/ or daemon/; the channel opener is injected, so this folder does not import ssh/ either.
export type { ForwardSpec, ForwardTarget } from './types.js';
export { parseForwardSpecs, formatForwardSpec, formatForwardTarget, formatHostPort, MAX_RANGE_PORTS } from './port-spec.js';
export { Forwarder } from './forwarder.js';
export type {
  ChannelOpener,
  ForwardStats,
  ForwarderOptions,
  ForwardConnection,
  ForwardConnectionSummary,
  ForwarderEvents,
} from './forwarder.js';
