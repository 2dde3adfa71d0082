// The libvirt layer: virsh argv and shell quoting, parsers of virsh/ip output, and the one-round-trip inventory script. All pure.
// Must not import cli/, server/, daemon/ or ssh/: callers run the commands (over SSH) and hand the text in.
export { quoteArg, commandLine } from './shell-quote.js';
export * from './virsh-argv.js';
export { parseDomainXml, isLoopback, isExposed } from './domain-xml.js';
export type { DomainInfo, GraphicsInfo, GraphicsListen, InterfaceInfo, ListenType } from './domain-xml.js';
export { parseNetworkXml } from './network-xml.js';
export type { NetworkInfo } from './network-xml.js';
export { parseDhcpLeases, parseDomifaddr, parseIpNeigh, parseArpN } from './leases.js';
export type { DhcpLease, InterfaceAddress, Neighbour } from './leases.js';
export { DOMAIN_STATES, isUuid, parseUuidList, parseNameList, parseDomstate, parseDomainTable } from './domain-list.js';
export type { DomainRow, DomainState } from './domain-list.js';
export { buildInventoryScript, parseInventoryOutput, newBoundary, REDACTED } from './inventory-script.js';
export type { RawInventory, RawSection, SectionKind, InventoryScriptOptions } from './inventory-script.js';
export { assembleInventory } from './inventory.js';
export type { Inventory, InventoryDomain, InventoryNetwork, InventoryState, VmAddress } from './inventory.js';
export { classifyVirshFailure, virshError, virshMessage } from './virsh-errors.js';
export type { VirshErrorCode, VirshFailure } from './virsh-errors.js';
