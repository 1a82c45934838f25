import { READABLE_NEWS_ID } from "../mind/text.js";

const isDigit = (c: number) => c >= 48 && c <= 57;

/**
 * Orders IDs like `U2 < U10`: runs of digits compare as numbers, any other character by its code
 * unit, and IDs equal that way (`U02`, `U2`) by code units. Comparing token by token keeps the
 * order transitive for any mix of IDs (`U1x`, `U2`, `U10`), so a sort gives the same result
 * whatever order the records came in. Locale-free and allocation-free: MIND-large has 711k users.
 */
export function compareIds(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    if (!isDigit(ca) || !isDigit(cb)) {
      if (ca !== cb) return ca - cb;
      i++;
      j++;
      continue;
    }
    let ie = i;
    while (ie < a.length && isDigit(a.charCodeAt(ie))) ie++;
    let je = j;
    while (je < b.length && isDigit(b.charCodeAt(je))) je++;
    // Leading zeros do not change the number (one digit stays, so "0" is a number too).
    while (i < ie - 1 && a.charCodeAt(i) === 48) i++;
    while (j < je - 1 && b.charCodeAt(j) === 48) j++;
    if (ie - i !== je - j) return ie - i - (je - j);
    for (; i < ie; i++, j++) {
      const d = a.charCodeAt(i) - b.charCodeAt(j);
      if (d !== 0) return d;
    }
  }
  if (i < a.length || j < b.length) return i < a.length ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortIds(ids: Iterable<string>): string[] {
  return [...ids].sort(compareIds);
}

/** The largest `N<digits>` news ID as a number (0 when there is none); other IDs cannot collide with `N<digits>`. */
export function maxNumericNewsId(ids: Iterable<string>): bigint {
  let max = 0n;
  for (const id of ids) {
    if (!READABLE_NEWS_ID.test(id)) continue;
    const n = BigInt(id.slice(1));
    if (n > max) max = n;
  }
  return max;
}
