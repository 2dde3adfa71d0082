/** Starting a native VNC or RDP client for a forward (the first that exists), detached from vmdesk. */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export { rdpFileText } from '../console/rdp-file.js';

function onPath(cmd: string, env: NodeJS.ProcessEnv = process.env): boolean {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

function launch(argv: string[]): void {
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: 'ignore' });
  child.on('error', () => {});
  child.unref();
}

/** Start a VNC viewer on 127.0.0.1:port; returns what was started, or undefined if none exists. */
export function openVncViewer(port: number): string | undefined {
  const url = `vnc://127.0.0.1:${port}`;
  const candidates: string[][] =
    process.platform === 'darwin'
      ? [['open', url]]
      : [
          ['vncviewer', `127.0.0.1::${port}`],
          ['remote-viewer', url],
          ['gvncviewer', `127.0.0.1:${port - 5900 >= 0 && port - 5900 < 100 ? port - 5900 : port}`],
        ];
  const found = candidates.find((c) => onPath(c[0]!));
  if (!found) return undefined;
  launch(found);
  return found.join(' ');
}

/** Start an RDP client with the .rdp file (or host:port); returns what was started, or undefined. */
export function openRdpClient(rdpFile: string, port: number): string | undefined {
  const candidates: string[][] =
    process.platform === 'darwin'
      ? [['open', rdpFile]]
      : process.platform === 'win32'
        ? [['mstsc', rdpFile]]
        : [
            ['xfreerdp', `/v:127.0.0.1:${port}`],
            ['wlfreerdp', `/v:127.0.0.1:${port}`],
          ];
  const found = candidates.find((c) => onPath(c[0]!) || process.platform === 'darwin');
  if (!found) return undefined;
  launch(found);
  return found.join(' ');
}
