// The SSH layer: ssh_config resolution (`ssh -G`), hop plans, host-key checks and one multiplexed chain per hop list.
// Must not import cli/, server/ or daemon/. Two type-level debts remain: ChannelTarget comes from forward/types.ts and
// quoteArg from libvirt/shell-quote.ts (both to move here, issue 10).
export { SshChain } from './chain.js';
export type { ChainOptions, ExecResult, HopState, HopStateName, RemoteProcess } from './chain.js';
export { planHops, parseJumpList, formatJumpSpec, DEFAULT_MAX_HOPS } from './hop-plan.js';
export type { JumpSpec, PlanOptions } from './hop-plan.js';
export type { HopSpec, HopTransport, ResolvedHost } from './types.js';
