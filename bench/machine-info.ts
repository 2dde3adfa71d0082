/** What the numbers were measured on, printed at the top and kept in the JSON. */
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

export interface MachineInfo {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  openssh: string;
  ssh2: string;
  /** Whether ssh2's native crypto binding loaded (without it AES-GCM runs through a slower path). */
  ssh2NativeCrypto: boolean;
  commit: string;
  loadAverage: number[];
}

async function output(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const r = await run(cmd, args, { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
    return `${r.stdout}${r.stderr}`.trim();
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return `${err.stdout ?? ''}${err.stderr ?? ''}`.trim() || 'unknown';
  }
}

export async function machineInfo(checkout: string): Promise<MachineInfo> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const commit = await output('git', ['rev-parse', '--short', 'HEAD'], checkout);
  const dirty = (await output('git', ['status', '--porcelain', '--untracked-files=no'], checkout)).length > 0;
  let ssh2NativeCrypto = false;
  try {
    require('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');
    ssh2NativeCrypto = true;
  } catch {
    // pure-JS fallback
  }
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    openssh: (await output('ssh', ['-V'])).split('\n')[0] ?? 'unknown',
    ssh2: (require('ssh2/package.json') as { version: string }).version,
    ssh2NativeCrypto,
    commit: `${commit}${dirty ? ' (with uncommitted changes)' : ''}`,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function describeMachine(m: MachineInfo): string[] {
  return [
    `date        ${m.date}`,
    `cpu         ${m.cpus} x ${m.cpuModel}, ${m.memoryGiB} GiB RAM, Linux ${m.kernel}`,
    `software    node ${m.node}, ${m.openssh}, ssh2 ${m.ssh2} (native crypto: ${m.ssh2NativeCrypto ? 'yes' : 'no'})`,
    `vmdesk      ${m.commit}`,
    `load avg    ${m.loadAverage.join(' ')} (other work on this machine shares the CPUs; each bench interleaves vmdesk and its peer)`,
  ];
}
