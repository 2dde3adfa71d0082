/**
 * How the dashboard's API and console WebSocket name a VM: by host and UUID
 * (docs/ui.md). A name is only ever shown; virsh would read a name such as
 * `1` as another VM's ID, and an unknown UUID as a name.
 */
import { asDomainUuid, isUuid, type DomainUuid } from '../libvirt/domain-list.js';

/** The UUID a route or query parameter carries, or undefined when it is not one (the caller answers 400). */
export function vmUuidParam(text: string | null | undefined): DomainUuid | undefined {
  return text !== null && text !== undefined && isUuid(text) ? asDomainUuid(text) : undefined;
}
