// The libvirt layer: virsh argv and shell quoting, parsers of virsh/ip/proc output, the one-round-trip inventory script (all pure),
// and the operations built on them, which run through a RemoteExec the caller supplies (SSH in practice).
// Must not import cli/, server/, daemon/ or ssh/: callers run the commands (over SSH) and hand the text in.
export { quoteArg, commandLine, shellWord } from './shell-quote.js';
export * from './virsh-argv.js';
export { parseDomainXml, isLoopback, isExposed } from './domain-xml.js';
export type { DomainInfo, GraphicsInfo, GraphicsListen, InterfaceInfo, ListenType } from './domain-xml.js';
export { parseNetworkXml } from './network-xml.js';
export type { NetworkInfo } from './network-xml.js';
export { parseDhcpLeases, parseDomifaddr, parseIpNeigh, parseArpN } from './leases.js';
export type { DhcpLease, InterfaceAddress, Neighbour } from './leases.js';
export { DOMAIN_STATES, asDomainUuid, asNetworkUuid, isUuid, parseUuidList, parseNameList, parseDomstate, parseDomainTable } from './domain-list.js';
export type { DomainRow, DomainState, DomainUuid, NetworkUuid } from './domain-list.js';
export { buildInventoryScript, parseInventoryOutput, newBoundary, REDACTED } from './inventory-script.js';
export type { RawInventory, RawSection, SectionKind, InventoryScriptOptions } from './inventory-script.js';
export { assembleInventory } from './inventory.js';
export type { Inventory, InventoryDomain, InventoryNetwork, InventoryState, VmAddress } from './inventory.js';
export { classifyVirshFailure, virshError, virshMessage } from './virsh-errors.js';
export type { VirshErrorCode, VirshFailure } from './virsh-errors.js';
export { setGraphicsListen, normalizeListenAddress } from './graphics-edit.js';
export type { GraphicsListenEdit } from './graphics-edit.js';
export { planReservation, removalXml, pinnedIps, isDnsLabel } from './dhcp-hosts.js';
export { parseQemuConf } from './qemu-conf.js';
export type { QemuConf } from './qemu-conf.js';
export { QEMU_PROCESS_SCRIPT, parseQemuProcesses } from './qemu-processes.js';
export type { QemuProcess, QemuVnc, QemuSpice } from './qemu-processes.js';
export { auditHost } from './audit.js';
export type { AuditConsole, AuditFinding, AuditReport, AuditSeverity } from './audit.js';
// Remote operations take a RemoteExec (a function that runs a /bin/sh script): still no ssh/ import.
export { readInventory, readDomain, resolveDomain, resolveNetwork, resolveVmTarget, resolveVncConsole, startDomain, checkSocketAccess } from './remote.js';
export type { RemoteExec } from './remote.js';
export { changeListen, pinIp, readQemuConf } from './edits.js';
export type { ListenChange, ListenChangeOptions, PinOptions, PinResult } from './edits.js';
