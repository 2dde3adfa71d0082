/** The .rdp file that points an RDP client (mstsc, Remmina, FreeRDP) at a local forward. */

/** The text of a minimal .rdp file for 127.0.0.1:port (CRLF lines, as mstsc writes them). */
export function rdpFileText(port: number, user?: string): string {
  return [`full address:s:127.0.0.1:${port}`, 'prompt for credentials:i:1', 'screen mode id:i:1', ...(user ? [`username:s:${user}`] : []), ''].join('\r\n');
}
