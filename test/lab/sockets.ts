/**
 * Socket work for lab tests: connecting from inside a namespace through its
 * relay (see ns-relay.ts), reading a greeting line, echo round trips checked
 * by sha256.
 */
import { createConnection, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import type { RelayRequest } from './ns-relay.js';

/** An error from inside the namespace, with the errno-like `code` the relay reported (ECONNREFUSED, ENETUNREACH...). */
export class RelayConnectError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'RelayConnectError';
    this.code = code;
  }
}

/** Opens a connection from inside the namespace served by the relay at `relayPath`. */
export function connectVia(relayPath: string, req: RelayRequest): Promise<Socket> {
  const what = req.path ?? `${req.host}:${req.port}`;
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path: relayPath, allowHalfOpen: true });
    let head = Buffer.alloc(0);
    const fail = (e: Error): void => {
      sock.destroy();
      reject(e);
    };
    sock.once('error', fail);
    sock.once('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = sock.read() as Buffer | null) !== null) {
        head = Buffer.concat([head, chunk]);
        const nl = head.indexOf(10);
        if (nl < 0) continue;
        sock.off('readable', onReadable);
        sock.off('end', onEnd);
        sock.off('error', fail);
        const line = head.subarray(0, nl).toString('utf8');
        const rest = head.subarray(nl + 1);
        if (line === 'OK') {
          if (rest.length > 0) sock.unshift(rest);
          // Callers attach their own 'error' listeners; this one keeps a late RST from crashing the test process.
          sock.on('error', () => {});
          resolve(sock);
          return;
        }
        const m = /^ERR (\S+) ?(.*)$/.exec(line);
        fail(new RelayConnectError(m?.[1] ?? 'EPROTO', `connect to ${what} from the namespace failed: ${m?.[2] ?? line}`));
        return;
      }
    };
    const onEnd = (): void => fail(new RelayConnectError('EPROTO', `relay closed before answering for ${what}`));
    sock.on('readable', onReadable);
    sock.once('end', onEnd);
  });
}

/** Reads one `\n`-terminated line (without the newline); bytes after it stay readable on the socket. */
export function readLine(sock: Socket, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (e: Error | undefined, line?: string): void => {
      clearTimeout(timer);
      sock.off('readable', onReadable);
      sock.off('end', onEnd);
      sock.off('error', onError);
      if (e) reject(e);
      else resolve(line ?? '');
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = sock.read() as Buffer | null) !== null) {
        buf = Buffer.concat([buf, chunk]);
        const nl = buf.indexOf(10);
        if (nl >= 0) {
          const rest = buf.subarray(nl + 1);
          if (rest.length > 0) sock.unshift(rest);
          done(undefined, buf.subarray(0, nl).toString('utf8'));
          return;
        }
      }
    };
    const onEnd = (): void => done(new Error(`connection ended before a full line; got ${JSON.stringify(buf.toString('utf8'))}`));
    const onError = (e: Error): void => done(e);
    const timer = setTimeout(() => done(new Error(`no line within ${timeoutMs} ms; got ${JSON.stringify(buf.toString('utf8'))}`)), timeoutMs);
    sock.on('readable', onReadable);
    sock.on('end', onEnd);
    sock.on('error', onError);
    onReadable();
  });
}

/** Writes `data`, half-closes, and returns everything read until the peer's end. */
export function echoRoundTrip(sock: Socket, data: Buffer | string, timeoutMs = 30_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`echo not finished within ${timeoutMs} ms (${Buffer.concat(chunks).length} bytes back)`));
    }, timeoutMs);
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
      sock.destroy();
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.resume();
    sock.end(data);
  });
}

export interface HashedEcho {
  bytesSent: number;
  bytesReceived: number;
  sentSha256: string;
  receivedSha256: string;
}

/**
 * Sends `totalBytes` of random data in chunks (respecting backpressure),
 * half-closes, and hashes what comes back as it streams in: no buffer holds
 * the whole payload, so hundreds can run at once.
 */
export function hashedEcho(sock: Socket, totalBytes: number, timeoutMs = 120_000): Promise<HashedEcho> {
  return new Promise((resolve, reject) => {
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let bytesSent = 0;
    let bytesReceived = 0;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`echo of ${totalBytes} bytes not finished within ${timeoutMs} ms (sent ${bytesSent}, received ${bytesReceived})`));
    }, timeoutMs);
    sock.on('data', (b: Buffer) => {
      bytesReceived += b.length;
      received.update(b);
    });
    sock.once('end', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ bytesSent, bytesReceived, sentSha256: sent.digest('hex'), receivedSha256: received.digest('hex') });
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.resume();
    const writeMore = (): void => {
      while (bytesSent < totalBytes) {
        const chunk = randomBytes(Math.min(64 * 1024, totalBytes - bytesSent));
        sent.update(chunk);
        bytesSent += chunk.length;
        if (!sock.write(chunk)) {
          sock.once('drain', writeMore);
          return;
        }
      }
      sock.end();
    };
    writeMore();
  });
}
