/**
 * The console's WebSocket, opened by a tiny first script (console-boot.ts)
 * while the page's big bundle (noVNC) still loads: the server's lookup of the
 * VM's console on the hypervisor then overlaps with script parsing instead of
 * following it. Whatever arrives before noVNC attaches is kept and replayed
 * in order, so it sees the stream from its first byte. noVNC accepts any
 * object with a WebSocket's send, close, binaryType, on-handlers, protocol and readyState.
 *
 * A WebSocket cannot carry the bearer header, so each socket first fetches a
 * single-use ticket for its console (an authenticated, Origin-checked POST,
 * which also lets the server start the console's lookup) and presents it in
 * the URL.
 */
import { fetchTicket } from './api';

export function consoleUrl(loc: Location, host: string, uuid: string, ticket: string): string {
  const scheme = loc.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${loc.host}/ws/console?${new URLSearchParams({ host, uuid, ticket }).toString()}`;
}

/** A ticket, then the socket it opens; rejects with the ticket request's ApiError. */
export async function openConsoleSocket(loc: Location, host: string, uuid: string): Promise<BufferedChannel> {
  const ticket = await fetchTicket({ purpose: 'console', host, uuid });
  return new BufferedChannel(consoleUrl(loc, host, uuid, ticket));
}

/** The socket console-boot.ts started for the VM `uuid` on `host`, for the page's first attempt. */
export interface EarlyConsole {
  host: string;
  uuid: string;
  socket: Promise<BufferedChannel>;
}

type Handler<E extends Event> = ((e: E) => void) | null;

export class BufferedChannel {
  readonly url: string;
  /** Set once the socket closed (also when nobody listened yet). */
  closeEvent: CloseEvent | null = null;
  private readonly ws: WebSocket;
  private readonly queue: MessageEvent[] = [];
  private isFlushing = false;
  private msgHandler: Handler<MessageEvent> = null;
  private openHandler: Handler<Event> = null;
  private closeHandler: Handler<CloseEvent> = null;
  private errorHandler: Handler<Event> = null;
  private pendingError: Event | null = null;

  constructor(url: string) {
    this.url = url;
    this.ws = new WebSocket(url);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onmessage = (e) => {
      if (this.msgHandler && !this.isFlushing) this.msgHandler(e);
      else this.queue.push(e);
    };
    this.ws.onopen = (e) => this.openHandler?.(e);
    this.ws.onerror = (e) => {
      if (this.errorHandler) this.errorHandler(e);
      else this.pendingError = e;
    };
    this.ws.onclose = (e) => {
      this.closeEvent = e;
      // A close that arrives while queued messages wait must reach the handler after them.
      if (this.closeHandler && !this.isFlushing && this.queue.length === 0) this.closeHandler(e);
    };
  }

  get binaryType(): BinaryType {
    return this.ws.binaryType;
  }
  set binaryType(t: BinaryType) {
    this.ws.binaryType = t;
  }
  get protocol(): string {
    return this.ws.protocol;
  }
  get readyState(): number {
    return this.ws.readyState;
  }

  get onmessage(): Handler<MessageEvent> {
    return this.msgHandler;
  }
  set onmessage(h: Handler<MessageEvent>) {
    this.msgHandler = h;
    this.scheduleFlush();
  }
  get onopen(): Handler<Event> {
    return this.openHandler;
  }
  set onopen(h: Handler<Event>) {
    this.openHandler = h;
  }
  get onclose(): Handler<CloseEvent> {
    return this.closeHandler;
  }
  set onclose(h: Handler<CloseEvent>) {
    this.closeHandler = h;
    this.scheduleFlush();
  }
  get onerror(): Handler<Event> {
    return this.errorHandler;
  }
  set onerror(h: Handler<Event>) {
    this.errorHandler = h;
    this.scheduleFlush();
  }

  send(data: ArrayBufferLike | ArrayBufferView | Blob | string): void {
    this.ws.send(data as ArrayBuffer);
  }
  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
  addEventListener(type: 'close', listener: (e: CloseEvent) => void): void {
    this.ws.addEventListener(type, listener);
  }

  /**
   * Replays what arrived before the handlers were set, after the current task:
   * noVNC attaches its handlers and then decides, in the same task, whether
   * the socket is already open, and must be in that state before data comes.
   */
  private scheduleFlush(): void {
    if (this.isFlushing || (this.queue.length === 0 && !this.closeEvent && !this.pendingError)) return;
    this.isFlushing = true;
    setTimeout(() => {
      while (this.queue.length > 0 && this.msgHandler) this.msgHandler(this.queue.shift()!);
      this.isFlushing = false;
      if (this.pendingError && this.errorHandler) {
        const e = this.pendingError;
        this.pendingError = null;
        this.errorHandler(e);
      }
      if (this.closeEvent && this.queue.length === 0) this.closeHandler?.(this.closeEvent);
    }, 0);
  }
}

declare global {
  interface Window {
    /** The socket console-boot.ts opened before the bundle loaded. */
    vmdeskEarlyConsole?: EarlyConsole;
    /** Set once console.ts runs: a boot script that runs later opens nothing. */
    vmdeskConsoleStarted?: boolean;
  }
}
