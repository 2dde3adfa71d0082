/**
 * One measured transfer through a forward: the stream-to-sink client in
 * vmd-client, with the CPU time the forwarding processes used meanwhile (the
 * client side: vmdesk's agent or ssh + its ProxyJump child; the server side:
 * every sshd session on jump and host).
 */
import type { BenchLab } from './bench-lab.js';
import type { Forward, Tool } from './forwards.js';
import { loadBetween, loadSnapshot, type LoadDuring } from './machine-load.js';
import { cpuSnapshot, cpuUsedBetween } from './proc-stats.js';

export interface StreamResult {
  tool: Tool;
  connections: number;
  totalBytes: number;
  elapsedMs: number;
  mibPerS: number;
  /** CPU seconds of the client-side forwarding processes during the transfer. */
  clientCpuS: number;
  /** CPU seconds of the sshd sessions on jump and host during the transfer. */
  serverCpuS: number;
  /** CPU seconds of the measuring client itself (sending the bytes). */
  senderCpuS: number;
  load: LoadDuring;
}

interface StreamClientOutput {
  totalBytes: number;
  elapsedMs: number;
  mibPerS: number;
  cpuS: number;
}

export async function measureStream(b: BenchLab, fwd: Forward, opts: { connections: number; bytesEach: number; timeoutMs: number }): Promise<StreamResult> {
  const clientPids = await fwd.clientPids();
  const serverPids = await b.serverSessionPids();
  const [clientBefore, serverBefore] = await Promise.all([cpuSnapshot(clientPids), cpuSnapshot(serverPids)]);
  const loadBefore = await loadSnapshot();
  const out = await b.runScript<StreamClientOutput>(
    'stream-to-sink',
    ['--port', String(fwd.localPort), '--connections', String(opts.connections), '--bytes-each', String(opts.bytesEach), '--timeout-ms', String(opts.timeoutMs)],
    opts.timeoutMs + 15_000,
  );
  const loadAfter = await loadSnapshot();
  const [clientAfter, serverAfter] = await Promise.all([cpuSnapshot(clientPids), cpuSnapshot(serverPids)]);
  return {
    tool: fwd.tool,
    connections: opts.connections,
    totalBytes: out.totalBytes,
    elapsedMs: out.elapsedMs,
    mibPerS: out.mibPerS,
    clientCpuS: cpuUsedBetween(clientBefore, clientAfter),
    serverCpuS: cpuUsedBetween(serverBefore, serverAfter),
    senderCpuS: out.cpuS,
    load: loadBetween(loadBefore, loadAfter),
  };
}
