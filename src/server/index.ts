/**
 * The UI server: HTTP + WebSocket routes for the dashboard and the browser
 * console, the access token, Host and Origin checks, and the sessions that
 * hold one SSH chain per host. Never imports cli/.
 */
export { startUiServer, type UiServer, type UiServerOptions } from './ui-server.js';
export { HostSessions, type UiHost, type HostView, type TunnelView, type RdpForwardView } from './host-sessions.js';
export { newToken } from './access.js';
