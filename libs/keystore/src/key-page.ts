// Key pages: many data keys in one file, for keys made in bulk (createKeys). A page is `<pageId>.keys`, its
// keys sit in fixed slots, and a key's id names its page and slot, so a key is found without an index.
import { randomBytes } from 'node:crypto';

/** Key page files: `<pageId>.keys`, the wrapped keys of its slots one after another. */
export const KEY_PAGE_SUFFIX = '.keys';
/** A page id: 28 random bytes as 56 lowercase hex characters. */
export const PAGE_ID_HEX = 56;
/** The most keys one page holds; createKeys makes more pages beyond it. */
export const MAX_KEYS_PER_PAGE = 65_536;

const PAGE_ID = /^[0-9a-f]{56}$/;

/** A fresh random page id. */
export function createPageId(): string {
  return randomBytes(PAGE_ID_HEX / 2).toString('hex');
}

/** The id of the key in `slot` of page `pageId`: the page id, then the slot as 8 hex digits (64 hex in all). */
export function pageKeyId(pageId: string, slot: number): string {
  return `${pageId}${slot.toString(16).padStart(8, '0')}`;
}

/** Where a (well-formed) key id would sit if it is a page key: its page and slot. */
export function pageSlotOf(keyId: string): { pageId: string; slot: number } {
  return { pageId: keyId.slice(0, PAGE_ID_HEX), slot: Number.parseInt(keyId.slice(PAGE_ID_HEX), 16) };
}

/** The page id of a page file's name, or undefined for any other file. */
export function pageIdOf(name: string): string | undefined {
  if (!name.endsWith(KEY_PAGE_SUFFIX)) return undefined;
  const pageId = name.slice(0, -KEY_PAGE_SUFFIX.length);
  return PAGE_ID.test(pageId) ? pageId : undefined;
}
