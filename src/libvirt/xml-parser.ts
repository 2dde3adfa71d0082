/**
 * The one way vmdesk reads libvirt's XML: every value stays the string libvirt
 * wrote (a VM named `0123` or ` x ` must not become a number or lose its
 * spaces), and only the listed element paths are arrays (attributes share
 * element paths, e.g. graphics/@listen vs graphics/listen).
 */
import { XMLParser } from 'fast-xml-parser';

/** A parser for libvirt XML whose repeatable elements are `arrayPaths` (dotted paths). */
export function libvirtXmlParser(arrayPaths: ReadonlySet<string>): XMLParser {
  return new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    isArray: (_name, jpath, _isLeaf, isAttribute) => !isAttribute && arrayPaths.has(String(jpath)),
  });
}
