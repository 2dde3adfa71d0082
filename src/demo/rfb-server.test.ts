import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { DemoConsole, renderScene, sceneLayout, type SceneRect } from './rfb-server.js';
import { isVmdeskError } from '../errors.js';

const NAME = 'web-01';
const BACKGROUND = '#1e3a5f';
const WIDTH = 320;
const HEIGHT = 400;

interface Format {
  bitsPerPixel: number;
  depth: number;
  isBigEndian: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
  isTrueColour?: boolean;
}

const XRGB_LE: Format = { bitsPerPixel: 32, depth: 24, isBigEndian: false, redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0 };
const RGB565_BE: Format = { bitsPerPixel: 16, depth: 16, isBigEndian: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
const BGR233: Format = { bitsPerPixel: 8, depth: 8, isBigEndian: false, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 };
/** What noVNC asks for: RGBX in memory. */
const RGBX_LE: Format = { bitsPerPixel: 32, depth: 24, isBigEndian: false, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 };
const RGB555_LE: Format = { bitsPerPixel: 16, depth: 15, isBigEndian: false, redMax: 31, greenMax: 31, blueMax: 31, redShift: 10, greenShift: 5, blueShift: 0 };
const XBGR_BE: Format = { bitsPerPixel: 32, depth: 24, isBigEndian: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 };

interface Rect extends SceneRect {
  encoding: number;
  data: Buffer;
}

/** A minimal RFB client: just enough of RFC 6143 to drive the demo server. */
class TestClient {
  readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private isEnded = false;
  format: Format = XRGB_LE;
  width = 0;
  height = 0;
  /** The client's copy of the screen, RGB, kept only for 32bpp XRGB_LE updates. */
  screen = new Uint8Array(0);

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.isEnded = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<TestClient> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new TestClient(socket);
  }

  get bufferedBytes(): number {
    return this.buffered.length;
  }

  async read(n: number, timeoutMs = 3000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffered.length < n) {
      if (this.isEnded) throw new Error(`connection closed with ${this.buffered.length}/${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.buffered.length})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  async closed(timeoutMs = 2000): Promise<void> {
    if (this.isEnded) return;
    await Promise.race([
      once(this.socket, 'close'),
      new Promise((_, reject) => setTimeout(() => reject(new Error('connection was not closed')), timeoutMs)),
    ]);
  }

  async handshake(version = 'RFB 003.008\n'): Promise<{ name: string; format: Buffer }> {
    assert.equal((await this.read(12)).toString('latin1'), 'RFB 003.008\n');
    this.socket.write(version);
    if (version === 'RFB 003.008\n' || version === 'RFB 003.007\n') {
      assert.deepEqual([...(await this.read(2))], [1, 1], 'one security type: None');
      this.socket.write(Buffer.from([1]));
      if (version === 'RFB 003.008\n') assert.equal((await this.read(4)).readUInt32BE(0), 0, 'SecurityResult OK');
    } else {
      assert.equal((await this.read(4)).readUInt32BE(0), 1, '3.3: security type None as a u32');
    }
    this.socket.write(Buffer.from([1])); // ClientInit, shared
    const init = await this.read(24);
    this.width = init.readUInt16BE(0);
    this.height = init.readUInt16BE(2);
    this.screen = new Uint8Array(this.width * this.height * 3);
    const name = (await this.read(init.readUInt32BE(20))).toString('utf8');
    return { name, format: init.subarray(4, 20) };
  }

  setPixelFormat(f: Format): void {
    this.format = f;
    this.socket.write(setPixelFormatMessage(f));
  }

  requestUpdate(isIncremental: boolean, r: SceneRect = { x: 0, y: 0, w: this.width, h: this.height }): void {
    this.socket.write(updateRequestMessage(isIncremental, r));
  }

  async readUpdate(timeoutMs = 3000): Promise<Rect[]> {
    const head = await this.read(4, timeoutMs);
    assert.equal(head[0], 0, 'FramebufferUpdate');
    const rects: Rect[] = [];
    const bytesPerPixel = this.format.bitsPerPixel / 8;
    for (let i = head.readUInt16BE(2); i > 0; i--) {
      const h = await this.read(12);
      const r = { x: h.readUInt16BE(0), y: h.readUInt16BE(2), w: h.readUInt16BE(4), h: h.readUInt16BE(6), encoding: h.readInt32BE(8) };
      assert.equal(r.encoding, 0, 'raw encoding');
      const data = Buffer.from(await this.read(r.w * r.h * bytesPerPixel));
      rects.push({ ...r, data });
      if (this.format === XRGB_LE) this.apply(r, data);
    }
    return rects;
  }

  private apply(r: SceneRect, data: Buffer): void {
    for (let y = 0; y < r.h; y++) {
      for (let x = 0; x < r.w; x++) {
        const s = (y * r.w + x) * 4;
        const d = ((r.y + y) * this.width + r.x + x) * 3;
        this.screen[d] = data[s + 2]!;
        this.screen[d + 1] = data[s + 1]!;
        this.screen[d + 2] = data[s]!;
      }
    }
  }
}

function setPixelFormatMessage(f: Format): Buffer {
  const b = Buffer.alloc(20);
  b[0] = 0;
  b[4] = f.bitsPerPixel;
  b[5] = f.depth;
  b[6] = f.isBigEndian ? 1 : 0;
  b[7] = f.isTrueColour === false ? 0 : 1;
  b.writeUInt16BE(f.redMax, 8);
  b.writeUInt16BE(f.greenMax, 10);
  b.writeUInt16BE(f.blueMax, 12);
  b[14] = f.redShift;
  b[15] = f.greenShift;
  b[16] = f.blueShift;
  return b;
}

function updateRequestMessage(isIncremental: boolean, r: SceneRect): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 3;
  b[1] = isIncremental ? 1 : 0;
  b.writeUInt16BE(r.x, 2);
  b.writeUInt16BE(r.y, 4);
  b.writeUInt16BE(r.w, 6);
  b.writeUInt16BE(r.h, 8);
  return b;
}

function keyMessages(keysyms: number[]): Buffer {
  return Buffer.concat(
    keysyms.flatMap((k) =>
      [1, 0].map((down) => {
        const b = Buffer.alloc(8);
        b[0] = 4;
        b[1] = down;
        b.writeUInt32BE(k, 4);
        return b;
      }),
    ),
  );
}

function cutTextMessage(length: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 6;
  b.writeInt32BE(length, 4);
  return Buffer.concat([b, payload]);
}

/** The pixel value `f` gives to an RGB colour, as the server must compute it. */
function pixelValue(f: Format, [r, g, b]: number[]): number {
  const scale = (v: number, max: number): number => Math.round((v * max) / 255);
  return ((scale(r!, f.redMax) << f.redShift) | (scale(g!, f.greenMax) << f.greenShift) | (scale(b!, f.blueMax) << f.blueShift)) >>> 0;
}

function readPixel(f: Format, data: Buffer, index: number): number {
  const at = index * (f.bitsPerPixel / 8);
  if (f.bitsPerPixel === 8) return data[at]!;
  if (f.bitsPerPixel === 16) return f.isBigEndian ? data.readUInt16BE(at) : data.readUInt16LE(at);
  return f.isBigEndian ? data.readUInt32BE(at) : data.readUInt32LE(at);
}

function region(rgb: Uint8Array, width: number, r: SceneRect): Buffer {
  const rows: Buffer[] = [];
  for (let y = r.y; y < r.y + r.h; y++) rows.push(Buffer.from(rgb.subarray((y * width + r.x) * 3, (y * width + r.x + r.w) * 3)));
  return Buffer.concat(rows);
}

function expectedScene(typed: string, clipboard = ''): Uint8Array {
  return renderScene({ width: WIDTH, height: HEIGHT, name: NAME, background: BACKGROUND, now: new Date(), elapsedMs: 0, typed, clipboard });
}

/** A background pixel right of the clock, away from text and the arena. */
const BACKGROUND_POINT = { x: WIDTH - 4, y: sceneLayout(WIDTH, HEIGHT).clock.y };

async function withConsole(fn: (console: DemoConsole, port: number) => Promise<void>): Promise<void> {
  const demo = new DemoConsole({ name: NAME, width: WIDTH, height: HEIGHT, background: BACKGROUND });
  const port = await demo.start();
  try {
    await fn(demo, port);
  } finally {
    await demo.stop();
  }
}

/** Send incremental requests until `isDone` holds for the client's screen. */
async function updateUntil(client: TestClient, isDone: () => boolean, onUpdate?: (rects: Rect[]) => void): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!isDone()) {
    assert.ok(Date.now() < deadline, 'screen did not reach the expected state');
    client.requestUpdate(true);
    const rects = await client.readUpdate();
    onUpdate?.(rects);
  }
}

test('3.8 handshake: security None, SecurityResult, ServerInit with size, xRGB little-endian and the name', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    const { name, format } = await client.handshake();
    assert.equal(name, NAME);
    assert.equal(client.width, WIDTH);
    assert.equal(client.height, HEIGHT);
    assert.deepEqual([...format.subarray(0, 13)], [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0]);
    client.socket.destroy();
  });
});

test('3.3 and 3.7 clients get their own security handshake forms', async () => {
  await withConsole(async (_demo, port) => {
    for (const version of ['RFB 003.003\n', 'RFB 003.007\n', 'RFB 003.005\n']) {
      const client = await TestClient.connect(port);
      const { name } = await client.handshake(version);
      assert.equal(name, NAME, version);
      client.socket.destroy();
    }
  });
});

test('a bad version string closes the connection', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    await client.read(12);
    client.socket.write('GET / HTTP/1.1\r\n');
    await client.closed();
  });
});

test('a non-incremental request gets the full frame: light banner text on a dark background', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    await client.handshake();
    client.requestUpdate(false);
    const rects = await client.readUpdate();
    assert.equal(rects.reduce((n, r) => n + r.w * r.h, 0), WIDTH * HEIGHT);
    for (const r of rects) assert.equal(r.data.length, r.w * r.h * 4);

    const header = sceneLayout(WIDTH, HEIGHT).header;
    const light = region(client.screen, WIDTH, header).reduce((n, _v, i, a) => (i % 3 === 0 && a[i]! > 200 && a[i + 1]! > 200 && a[i + 2]! > 200 ? n + 1 : n), 0);
    assert.ok(light > 100, `header has ${light} light pixels`);
    const bg = region(client.screen, WIDTH, { ...BACKGROUND_POINT, w: 1, h: 1 });
    assert.deepEqual([...bg], [0x1e, 0x3a, 0x5f]);
    client.socket.destroy();
  });
});

test('SetPixelFormat: 16bpp both endians, 8bpp, 32bpp with other shifts and endians, and back', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    await client.handshake();
    for (const format of [RGB565_BE, RGB555_LE, BGR233, XBGR_BE, RGBX_LE, XRGB_LE]) {
      client.setPixelFormat(format);
      client.requestUpdate(false);
      const rects = await client.readUpdate();
      assert.equal(rects.length, 1);
      const [r] = rects;
      assert.deepEqual({ x: r!.x, y: r!.y, w: r!.w, h: r!.h }, { x: 0, y: 0, w: WIDTH, h: HEIGHT });
      assert.equal(r!.data.length, WIDTH * HEIGHT * (format.bitsPerPixel / 8), `${format.bitsPerPixel}bpp frame size`);
      const pixel = readPixel(format, r!.data, BACKGROUND_POINT.y * WIDTH + BACKGROUND_POINT.x);
      assert.equal(pixel, pixelValue(format, [0x1e, 0x3a, 0x5f]), `${JSON.stringify(format)} background pixel`);
      const light = readPixel(format, r!.data, 0);
      assert.equal(light, pixelValue(format, [...region(expectedScene(''), WIDTH, { x: 0, y: 0, w: 1, h: 1 })]), 'header pixel');
    }
    client.socket.destroy();
  });
});

test('a partial non-incremental request gets exactly that area', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    await client.handshake();
    client.requestUpdate(false, { x: 10, y: 20, w: 30, h: 40 });
    const rects = await client.readUpdate();
    assert.deepEqual(rects.map(({ x, y, w, h }) => ({ x, y, w, h })), [{ x: 10, y: 20, w: 30, h: 40 }]);
    client.socket.destroy();
  });
});

test('typed keys (Return starts fresh, Backspace deletes) show in the typed line on later incremental updates', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    await client.handshake();
    client.requestUpdate(false);
    await client.readUpdate();
    const typedArea = sceneLayout(WIDTH, HEIGHT).typed;
    const before = region(client.screen, WIDTH, typedArea);
    assert.ok(before.equals(region(expectedScene(''), WIDTH, typedArea)));

    client.socket.write(keyMessages([0x7a, 0xff0d, 0x68, 0x78, 0xff08, 0x69])); // z Return h x BackSpace i
    const want = region(expectedScene('hi'), WIDTH, typedArea);
    assert.ok(!want.equals(before));
    await updateUntil(
      client,
      () => region(client.screen, WIDTH, typedArea).equals(want),
      (rects) => {
        const area = rects.reduce((n, r) => n + r.w * r.h, 0);
        assert.ok(area < (WIDTH * HEIGHT) / 2, `incremental update of ${area} pixels sends dirty areas only`);
      },
    );
    client.socket.destroy();
  });
});

test('updates go out only on request (RFC 6143 s7.5.3)', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    await client.handshake();
    client.requestUpdate(false);
    await client.readUpdate();
    client.socket.write(keyMessages([0x61]));
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(client.bufferedBytes, 0, 'no unrequested update while the screen changed');
    client.requestUpdate(true);
    assert.ok((await client.readUpdate()).length > 0);
    client.socket.destroy();
  });
});

test('a client that does not read is not sent more than about 4 MiB ahead; requests merge meanwhile', async () => {
  const demo = new DemoConsole({ name: NAME, width: 800, height: 480, background: BACKGROUND });
  const port = await demo.start();
  try {
    const client = await TestClient.connect(port);
    await client.handshake();
    client.socket.pause();
    const frameBytes = 800 * 480 * 4;
    const requests = 60;
    for (let i = 0; i < requests; i++) client.requestUpdate(false);
    await new Promise((resolve) => setTimeout(resolve, 500));
    client.socket.resume();
    let updates = 0;
    for (;;) {
      client.requestUpdate(true);
      const rects = await client.readUpdate();
      updates++;
      if (rects.length !== 1 || rects[0]!.w * rects[0]!.h * 4 !== frameBytes) break;
    }
    // Every non-incremental request got a full frame, but the ones that came
    // while the socket was backed up were answered by a single frame.
    assert.ok(updates - 1 < requests / 2, `${updates - 1} full frames for ${requests} requests`);
    client.socket.destroy();
  } finally {
    await demo.stop();
  }
});

test('messages split across writes and coalesced in one write are parsed', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    await client.handshake();
    const encodings = Buffer.alloc(4 + 8);
    encodings[0] = 2;
    encodings.writeUInt16BE(2, 2);
    encodings.writeInt32BE(0, 4);
    encodings.writeInt32BE(-223, 8);
    client.format = RGB565_BE;
    client.socket.write(Buffer.concat([encodings, setPixelFormatMessage(RGB565_BE), updateRequestMessage(false, { x: 0, y: 0, w: 8, h: 8 })]));
    assert.equal((await client.readUpdate())[0]!.data.length, 8 * 8 * 2);

    const request = updateRequestMessage(false, { x: 0, y: 0, w: 4, h: 4 });
    client.socket.write(request.subarray(0, 3));
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.socket.write(request.subarray(3));
    assert.equal((await client.readUpdate())[0]!.data.length, 4 * 4 * 2);
    client.socket.destroy();
  });
});

test('ClientCutText shows on screen; the extended (negative length) form is skipped, even split', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    await client.handshake();
    client.requestUpdate(false);
    await client.readUpdate();
    const extended = cutTextMessage(-12, Buffer.from([0x10, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 6, 7, 8, 9]));
    const plain = cutTextMessage(5, Buffer.from('hello', 'latin1'));
    const both = Buffer.concat([extended, plain]);
    client.socket.write(both.subarray(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 30));
    client.socket.write(both.subarray(10));
    const clipArea = sceneLayout(WIDTH, HEIGHT).clipboard;
    const want = region(expectedScene('', 'hello'), WIDTH, clipArea);
    await updateUntil(client, () => region(client.screen, WIDTH, clipArea).equals(want));
    client.socket.destroy();
  });
});

test('an unknown message type closes the connection', async () => {
  await withConsole(async (demo, port) => {
    const client = await TestClient.connect(port);
    await client.handshake();
    client.socket.write(Buffer.from([99, 0, 0, 0]));
    await client.closed();
    assert.equal(demo.clientCount, 0);
  });
});

test('a colour-map pixel format closes the connection', async () => {
  await withConsole(async (_demo, port) => {
    const client = await TestClient.connect(port);
    await client.handshake();
    client.socket.write(setPixelFormatMessage({ ...BGR233, isTrueColour: false }));
    await client.closed();
  });
});

test('stop() closes the listener and every client', async () => {
  const demo = new DemoConsole({ name: NAME, width: WIDTH, height: HEIGHT });
  const port = await demo.start();
  assert.equal(demo.port, port);
  const clients = [await TestClient.connect(port), await TestClient.connect(port)];
  await clients[0]!.handshake();
  await clients[1]!.read(12);
  assert.equal(demo.clientCount, 2);
  await demo.stop();
  await Promise.all(clients.map((c) => c.closed()));
  assert.equal(demo.clientCount, 0);
  const refused = net.connect(port, '127.0.0.1');
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});

test('bad options and a taken port fail with stable codes', async () => {
  assert.throws(() => new DemoConsole({ name: 'x', background: 'blue' }), (err) => isVmdeskError(err, 'CONFIG_INVALID'));
  assert.throws(() => new DemoConsole({ name: 'x', width: 0 }), (err) => isVmdeskError(err, 'CONFIG_INVALID'));
  await withConsole(async (_demo, port) => {
    const second = new DemoConsole({ name: 'x', port });
    await assert.rejects(second.start(), (err) => isVmdeskError(err, 'PORT_IN_USE'));
  });
});
