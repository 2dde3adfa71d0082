/**
 * Just enough of RFB (RFC 6143 s7.1-7.3) to learn which VM a VNC connection
 * reached: QEMU sends `QEMU (NAME)` as the desktop name in ServerInit.
 */
import type { Socket } from 'node:net';

function reader(sock: Socket) {
  let buf = Buffer.alloc(0);
  let waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  const pump = () => {
    if (waiting && buf.length >= waiting.n) {
      const w = waiting;
      waiting = undefined;
      const out = buf.subarray(0, w.n);
      buf = buf.subarray(w.n);
      w.resolve(out);
    }
  };
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    pump();
  });
  const fail = (e: Error) => waiting?.reject(e);
  sock.on('error', fail);
  sock.on('close', () => fail(new Error('connection closed during the RFB handshake')));
  return (n: number) =>
    new Promise<Buffer>((resolve, reject) => {
      waiting = { n, resolve, reject };
      pump();
    });
}

export interface RfbHello {
  version: string;
  securityTypes: number[];
  /** The desktop name from ServerInit (only when security type None was offered). */
  name?: string;
  width?: number;
  height?: number;
}

/** Does the RFB 3.8 handshake over `sock` and closes it. */
export async function rfbHello(sock: Socket, timeoutMs = 10_000): Promise<RfbHello> {
  const read = reader(sock);
  const timer = setTimeout(() => sock.destroy(new Error('RFB handshake timed out')), timeoutMs);
  try {
    const version = (await read(12)).toString('latin1').trim();
    sock.write('RFB 003.008\n');
    const n = (await read(1)).readUInt8(0);
    if (n === 0) throw new Error('server refused the connection');
    const securityTypes = [...(await read(n))];
    if (!securityTypes.includes(1)) return { version, securityTypes };
    sock.write(Buffer.from([1]));
    const result = (await read(4)).readUInt32BE(0);
    if (result !== 0) throw new Error(`security handshake failed (${result})`);
    sock.write(Buffer.from([1])); // ClientInit: shared
    const init = await read(24);
    const nameLen = init.readUInt32BE(20);
    const name = (await read(nameLen)).toString('utf8');
    return { version, securityTypes, name, width: init.readUInt16BE(0), height: init.readUInt16BE(2) };
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}
