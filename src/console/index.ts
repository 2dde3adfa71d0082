/**
 * What a console is to the user: dashboard views of VMs and their consoles,
 * .rdp files. Pure; imports libvirt types only, never server/ or cli/.
 */
export { consoleAddress, shellWord, vmView, type ConsoleView, type VmView } from './vm-view.js';
export { rdpFileText } from './rdp-file.js';
