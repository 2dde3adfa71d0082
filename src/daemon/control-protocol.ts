/**
 * The agent's control protocol: newline-delimited JSON over a unix socket.
 * A request `{id, method, params}` gets one final `{id, result}` or
 * `{id, error}`; before that the agent may send `{id, prompt}` (a question
 * for the person at the CLI's terminal, answered with `{id, answer}`) and
 * `{id, progress}` lines.
 */
import type { Socket } from 'node:net';

export const PROTOCOL_VERSION = 1;
/** A line longer than this is a protocol error (guards the agent's memory). */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

export type ControlMessage = Record<string, unknown> & { id?: number };

/** Calls `onMessage` for every JSON line read from `sock`; `onError` on malformed input. */
export function readMessages(sock: Socket, onMessage: (m: ControlMessage) => void, onError: (err: Error) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    if (buf.length > MAX_LINE_BYTES) {
      onError(new Error('control message too long'));
      sock.destroy();
      return;
    }
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        onError(new Error('malformed control message'));
        sock.destroy();
        return;
      }
      if (msg && typeof msg === 'object') onMessage(msg as ControlMessage);
    }
  });
}

export function writeMessage(sock: Socket, msg: ControlMessage): void {
  if (!sock.destroyed && sock.writable) sock.write(`${JSON.stringify(msg)}\n`);
}
