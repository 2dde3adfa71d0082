/** Runs first on the console page: opens the console's WebSocket while the noVNC bundle loads (see console-socket.ts). */
import { BufferedChannel, consoleUrl } from './console-socket.js';

const params = new URLSearchParams(location.search);
const host = params.get('host');
const uuid = params.get('uuid');
if (host && uuid) window.vmdeskEarlyConsole = new BufferedChannel(consoleUrl(location, host, uuid));
