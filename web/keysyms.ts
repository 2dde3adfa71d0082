// X11 keysyms for the console's key menu and "Type it" (pure: unit-tested under Node).
// RFC 6143 section 7.5.4: KeyEvent carries an X keysym (X11 keysymdef.h).

export interface Key { keysym: number; code: string }

export const KEY = {
  ctrl: { keysym: 0xffe3, code: 'ControlLeft' },
  alt: { keysym: 0xffe9, code: 'AltLeft' },
  superKey: { keysym: 0xffeb, code: 'MetaLeft' },
  del: { keysym: 0xffff, code: 'Delete' },
  tab: { keysym: 0xff09, code: 'Tab' },
  esc: { keysym: 0xff1b, code: 'Escape' },
  print: { keysym: 0xff61, code: 'PrintScreen' },
  enter: { keysym: 0xff0d, code: 'Enter' },
} as const satisfies Record<string, Key>;

/** F1..F12: XK_F1 is 0xffbe and the rest follow. */
export function functionKey(n: number): Key {
  return { keysym: 0xffbe + n - 1, code: `F${n}` };
}

export interface Combo { label: string; keys: Key[] }

/** The Keys menu, in order. Ctrl-Alt-Del has its own button. */
export const COMBOS: Combo[] = [
  ...[1, 2, 3, 4, 5, 6, 7].map((n) => ({ label: `Ctrl-Alt-F${n}`, keys: [KEY.ctrl, KEY.alt, functionKey(n)] })),
  { label: 'Alt-Tab', keys: [KEY.alt, KEY.tab] },
  { label: 'Alt-F4', keys: [KEY.alt, functionKey(4)] },
  { label: 'Super (Windows key)', keys: [KEY.superKey] },
  { label: 'Ctrl-Esc', keys: [KEY.ctrl, KEY.esc] },
  { label: 'PrintScreen', keys: [KEY.print] },
];

export interface KeyEvent { keysym: number; code: string | null; down: boolean }

/** Presses the keys in order and releases them in reverse, like a person does. */
export function comboEvents(keys: readonly Key[]): KeyEvent[] {
  return [
    ...keys.map((k) => ({ keysym: k.keysym, code: k.code, down: true })),
    ...[...keys].reverse().map((k) => ({ keysym: k.keysym, code: k.code, down: false })),
  ];
}

/**
 * The keysym that types one character (a code point), or null for control
 * characters that have no key. Latin-1 printable characters are their own
 * keysym; everything else is Unicode keysym 0x01000000 + code point.
 */
export function keysymForChar(codePoint: number): number | null {
  if (codePoint === 0x0a) return KEY.enter.keysym;
  if (codePoint === 0x09) return KEY.tab.keysym;
  if ((codePoint >= 0x20 && codePoint <= 0x7e) || (codePoint >= 0xa0 && codePoint <= 0xff)) return codePoint;
  if (codePoint < 0x20 || (codePoint >= 0x7f && codePoint < 0xa0)) return null;
  return 0x01000000 + codePoint;
}

/** The keysyms that type `text`: CRLF and CR count as one Return, other control characters are dropped. */
export function keysymsForText(text: string): number[] {
  const out: number[] = [];
  const normalized = text.replace(/\r\n?/g, '\n');
  for (const ch of normalized) {
    const keysym = keysymForChar(ch.codePointAt(0) ?? 0);
    if (keysym !== null) out.push(keysym);
  }
  return out;
}
