/**
 * A browser console's WebSocket bridged onto an SSH channel to the VM's VNC
 * server: RFB bytes both ways, with backpressure on each side (the WebSocket
 * stream pauses the browser's socket; the channel's window and the chain's
 * write gate pause the other way). No local port, no websockify.
 */
import { pipeline } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';
import type { ConsoleChannel, ErrorView } from './host-sessions.js';

/** Close code for "the console could not be opened" (4000-4999 are for applications, RFC 6455 s7.4.2). */
export const CONSOLE_OPEN_FAILED = 4000;
/** RFC 6455 s5.5: a close frame's payload is at most 125 bytes, 2 of them the code. */
const MAX_REASON_BYTES = 123;
const PING_INTERVAL_MS = 30_000;

/** `CODE: message`, cut to fit a close frame without splitting a UTF-8 character. */
export function closeReason(e: ErrorView): string {
  let text = `${e.code}: ${e.message}`;
  while (Buffer.byteLength(text) > MAX_REASON_BYTES) text = text.slice(0, -2) + '…';
  return text;
}

/** Pings `ws` every 30 s and drops it when a ping went unanswered: a browser that vanished frees its channel. */
export function keepAlive(ws: WebSocket): void {
  let isAlive = true;
  ws.on('pong', () => {
    isAlive = true;
  });
  const ping = setInterval(() => {
    if (!isAlive) return ws.terminate();
    isAlive = false;
    ws.ping();
  }, PING_INTERVAL_MS);
  ws.once('close', () => clearInterval(ping));
}

/**
 * Opens the console and pipes it to `ws`. Messages the browser sends while
 * the channel opens wait in the WebSocket stream (RFB's server speaks first,
 * so normally there are none).
 */
export function bridgeConsole(ws: WebSocket, open: () => Promise<ConsoleChannel>, describe: (err: unknown) => ErrorView, log: (line: string) => void): void {
  const browser = createWebSocketStream(ws, { readableObjectMode: false, writableObjectMode: false });
  browser.on('error', () => {});
  keepAlive(ws);

  open().then(
    (ch) => {
      if (ws.readyState !== ws.OPEN) {
        ch.stream.destroy();
        ch.release();
        return;
      }
      const vm = ch.stream;
      vm.on('data', (b: Buffer) => ch.count(b.length, 0));
      browser.on('data', (b: Buffer) => ch.count(0, b.length));
      let finished = 0;
      const done = (err: Error | null | undefined) => {
        if (err) {
          browser.destroy();
          vm.destroy();
        }
        if (++finished === 2) ch.release();
      };
      pipeline(browser, vm, done);
      pipeline(vm, browser, done);
    },
    (err: unknown) => {
      const view = describe(err);
      log(`console: ${view.code}: ${view.message}`);
      // Not browser.destroy(): that terminates the socket and could drop the close frame carrying the reason.
      if (ws.readyState === ws.OPEN) ws.close(CONSOLE_OPEN_FAILED, closeReason(view));
    },
  );
}
