// Builds DOM nodes. Text only ever goes in through textContent / text nodes:
// VM and host names are attacker-influenced (`<script>`, quotes), so no innerHTML.

type Child = Node | string | null | undefined | false;

export interface Props {
  className?: string;
  title?: string;
  id?: string;
  /** Other attributes (never `style`: the CSP forbids style attributes). */
  attrs?: Record<string, string>;
  dataset?: Record<string, string>;
}

/** Makes an element with properties and children; strings become text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props !== null) {
    if (props.className !== undefined) el.className = props.className;
    if (props.title !== undefined) el.title = props.title;
    if (props.id !== undefined) el.id = props.id;
    for (const [k, v] of Object.entries(props.attrs ?? {})) el.setAttribute(k, v);
    for (const [k, v] of Object.entries(props.dataset ?? {})) el.dataset[k] = v;
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

/** Replaces all children of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild !== null) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

/** Finds an element the page's HTML must contain; a missing one is a bug in web/. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`page has no #${id}`);
  return el as T;
}
