/** Runs first on the console page: fetches a ticket and opens the console's WebSocket while the noVNC bundle loads (see console-socket.ts). */
import { openConsoleSocket } from './console-socket.js';

const params = new URLSearchParams(location.search);
const host = params.get('host');
const uuid = params.get('uuid');
if (host && uuid && window.vmdeskConsoleStarted !== true) {
  const socket = openConsoleSocket(location, host, uuid);
  // console.ts takes it (and its failure) on its first attempt.
  socket.catch(() => {});
  window.vmdeskEarlyConsole = { host, uuid, socket };
}
