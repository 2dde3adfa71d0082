/**
 * A VNC viewer that presses keys on command, run inside a namespace next to
 * the browser (so both reach a forward the same way: straight TCP with
 * TCP_NODELAY, no relay in between):
 *
 *   ip netns exec vmd-client node --import tsx test/lab/rfb-key-client.ts PORT KEYSYM
 *
 * Connects to 127.0.0.1:PORT and prints one JSON line `{"ready":true,"name":...}`;
 * then for every `key` line on stdin presses KEYSYM and prints
 * `{"ms":..,"isGlyph":..,"change":{..}}` (see timeKeyEcho); `quit` or EOF ends it.
 */
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { RfbViewer, timeKeyEcho } from './rfb-viewer.js';

const port = Number(process.argv[2]);
const keysym = Number(process.argv[3]);
if (!Number.isInteger(port) || !Number.isInteger(keysym)) {
  process.stderr.write('usage: rfb-key-client.ts PORT KEYSYM\n');
  process.exit(2);
}

const say = (v: unknown): void => void process.stdout.write(`${JSON.stringify(v)}\n`);

try {
  const sock = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const viewer = await RfbViewer.open(sock);
  say({ ready: true, name: viewer.name, width: viewer.width, height: viewer.height });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === 'quit') break;
    if (line.trim() !== 'key') continue;
    try {
      say(await timeKeyEcho(viewer, keysym));
    } catch (e) {
      say({ error: e instanceof Error ? e.message : String(e) });
    }
  }
  viewer.close();
  process.exit(0);
} catch (e) {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
}
