/**
 * The embedded demo site (clearly a demo): in-process SSH servers, a made-up
 * KVM host answering libvirt's commands, and VNC consoles drawing themselves.
 * Imports ssh/ types and libvirt/'s parsers and script builders (so it answers
 * exactly what vmdesk sends), never cli/, server/ or daemon/; no real code path imports it.
 */
export { startDemoSite, type DemoSite, type DemoSiteOptions } from './site.js';
export { DemoHypervisor, splitCommandLine, type CommandResult, type DemoHypervisorOptions } from './hypervisor.js';
export { demoInventory, DEMO_HOST_NAME, type DemoDomain, type DemoInventory, type DemoNetwork, type DemoVnc } from './demo-inventory.js';
export { DemoSshServer, generateEd25519, type DemoSshServerOptions, type ExecContext, type ExecHandler, type ForwardEndpoint } from './ssh-server.js';
export { DemoConsole, type DemoConsoleOptions } from './rfb-server.js';
