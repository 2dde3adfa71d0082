/**
 * Runs inside vmd-client: a fake SSH server on 127.0.0.1:PORT that reads one
 * client's version line and its KEXINIT (RFC 4253 s7.1, sent in the clear)
 * and reports the algorithm lists the client offered, then hangs up. The
 * cipher a real server picks is the first one on the client's list that the
 * server also supports (RFC 4253 s7.1), so this shows what vmdesk would
 * negotiate with the lab's sshd without instrumenting vmdesk.
 *
 * Usage: node kexinit-probe.js --port P [--timeout-ms T]
 * Prints `ready` once listening, then one JSON line.
 */
import { createServer } from 'node:net';
import { intArg, parseArgs, runMain } from './client-args.js';

const SSH_MSG_KEXINIT = 20;
const NAME_LISTS = ['kex', 'hostKey', 'cipherClientToServer', 'cipherServerToClient', 'macClientToServer', 'macServerToClient', 'compressionClientToServer', 'compressionServerToClient'] as const;

function parseKexinit(payload: Buffer): Record<string, string[]> {
  if (payload[0] !== SSH_MSG_KEXINIT) throw new Error(`expected KEXINIT (20), got message ${payload[0]}`);
  let off = 1 + 16; // message number, cookie
  const lists: Record<string, string[]> = {};
  for (const name of NAME_LISTS) {
    const len = payload.readUInt32BE(off);
    off += 4;
    lists[name] = payload.subarray(off, off + len).toString('ascii').split(',').filter(Boolean);
    off += len;
  }
  return lists;
}

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const port = intArg(args, 'port');
  const timeoutMs = intArg(args, 'timeout-ms', 30_000);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no SSH client came within ${timeoutMs} ms`)), timeoutMs);
    const server = createServer((sock) => {
      let buf = Buffer.alloc(0);
      let version: string | undefined;
      sock.on('error', () => {});
      sock.write('SSH-2.0-vmdesk_bench_probe\r\n');
      sock.on('data', (b: Buffer) => {
        buf = Buffer.concat([buf, b]);
        if (version === undefined) {
          const nl = buf.indexOf('\n');
          if (nl < 0) return;
          version = buf.subarray(0, nl).toString('ascii').replace(/\r$/, '');
          buf = buf.subarray(nl + 1);
        }
        if (buf.length < 5) return;
        const packetLength = buf.readUInt32BE(0);
        if (buf.length < 4 + packetLength) return;
        const paddingLength = buf[4]!;
        const payload = buf.subarray(5, 4 + packetLength - paddingLength);
        clearTimeout(timer);
        sock.destroy();
        server.close();
        try {
          resolve({ version, ...parseKexinit(payload) });
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => process.stdout.write('ready\n'));
  });
});
