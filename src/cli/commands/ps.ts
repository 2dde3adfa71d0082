/** `vmdesk ps` and `vmdesk stop`: the agent's tunnels. */
import { AgentClient } from '../../daemon/agent-client.js';
import type { TunnelInfo } from '../../daemon/tunnel.js';
import { VmdeskError } from '../../errors.js';
import { formatAge, formatBytes, formatTable, forwardRows } from '../output.js';

export async function listTunnels(): Promise<TunnelInfo[]> {
  const agent = await AgentClient.connect({ start: false });
  if (!agent) return [];
  try {
    return (await agent.request('list', {})) as TunnelInfo[];
  } finally {
    agent.close();
  }
}

function hopSummary(t: TunnelInfo): string {
  return t.hops.map((h) => (h.state === 'up' ? h.label : `${h.label}:${h.state.toUpperCase()}`)).join(' -> ');
}

export async function psCommand(opts: { json?: boolean }): Promise<number> {
  const tunnels = await listTunnels();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(tunnels)}\n`);
    return 0;
  }
  if (tunnels.length === 0) {
    process.stdout.write('no tunnels (start one with: vmdesk forward -d HOST PORT)\n');
    return 0;
  }
  const rows = tunnels.map((t) => {
    const conns = t.forwards.reduce((a, f) => a + f.active, 0);
    const bytesIn = t.forwards.reduce((a, f) => a + f.bytesIn, 0);
    const bytesOut = t.forwards.reduce((a, f) => a + f.bytesOut, 0);
    const fwd = forwardRows(t.forwards).map((r) => `${r.local}->${r.remote}`);
    return [t.id, t.dest, t.state, hopSummary(t), fwd.length > 2 ? `${fwd.slice(0, 2).join(' ')} +${fwd.length - 2}` : fwd.join(' '), String(conns), formatBytes(bytesIn), formatBytes(bytesOut), formatAge(t.since)];
  });
  process.stdout.write(`${formatTable(['ID', 'DEST', 'STATE', 'HOPS', 'FORWARDS', 'CONNS', 'IN', 'OUT', 'SINCE'], rows)}\n`);
  for (const t of tunnels) {
    if (t.endpoints) process.stdout.write(`tunnel ${t.id}: endpoints ${t.endpoints.mode === 'events' ? 'live (events)' : `looked up per connection (events unavailable: ${t.endpoints.reason})`}\n`);
    for (const h of t.hops) {
      if (h.state !== 'up' && h.error) process.stdout.write(`tunnel ${t.id}: ${h.label} ${h.state} for ${formatAge(h.since)}: ${h.error.message}\n`);
    }
  }
  return 0;
}

export async function stopCommand(ids: string[], opts: { all?: boolean; json?: boolean }): Promise<number> {
  if (!opts.all && ids.length === 0) throw new VmdeskError('USAGE', 'name the tunnels to stop, or --all', { hint: 'vmdesk ps lists them' });
  const agent = await AgentClient.connect({ start: false });
  if (!agent) {
    if (opts.all) {
      process.stdout.write(opts.json ? '{"stopped":[]}\n' : 'no tunnels\n');
      return 0;
    }
    throw new VmdeskError('TUNNEL_NOT_FOUND', `no tunnel with id ${ids.join(', ')} (no vmdesk agent is running)`);
  }
  try {
    const res = (await agent.request('stop', { ids, all: opts.all ?? false })) as { stopped: string[] };
    process.stdout.write(opts.json ? `${JSON.stringify(res)}\n` : res.stopped.length ? `stopped ${res.stopped.join(', ')}\n` : 'no tunnels\n');
    return 0;
  } finally {
    agent.close();
  }
}
