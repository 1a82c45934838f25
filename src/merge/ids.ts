const LETTERS_DIGITS = /^([A-Za-z]*)0*(\d+)$/;

/**
 * Orders IDs like `U2 < U10` (numeric part compared as a number when both IDs are letters then
 * digits), everything else by code units: a total, locale-free order so output never depends on
 * the machine.
 */
export function compareIds(a: string, b: string): number {
  const ma = LETTERS_DIGITS.exec(a);
  const mb = LETTERS_DIGITS.exec(b);
  if (ma && mb && ma[1] === mb[1]) {
    // Digits without leading zeros: a longer number is larger, equal lengths compare as text.
    const da = ma[2]!;
    const db = mb[2]!;
    if (da.length !== db.length) return da.length - db.length;
    if (da !== db) return da < db ? -1 : 1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorts IDs with compareIds, parsing each ID once (MIND-large has 711k users). */
export function sortIds(ids: Iterable<string>): string[] {
  const keyed = [...ids].map((id) => {
    const m = LETTERS_DIGITS.exec(id);
    return { id, prefix: m ? m[1]! : null, digits: m ? m[2]! : "" };
  });
  keyed.sort((a, b) => {
    if (a.prefix !== null && a.prefix === b.prefix) {
      if (a.digits.length !== b.digits.length) return a.digits.length - b.digits.length;
      if (a.digits !== b.digits) return a.digits < b.digits ? -1 : 1;
    }
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  return keyed.map((k) => k.id);
}

/** The largest `N<digits>` news ID as a number (0 when there is none); other IDs cannot collide with `N<digits>`. */
export function maxNumericNewsId(ids: Iterable<string>): bigint {
  let max = 0n;
  for (const id of ids) {
    if (id.length < 2 || id.charCodeAt(0) !== 78 /* N */) continue;
    const digits = id.slice(1);
    if (!/^\d+$/.test(digits)) continue;
    const n = BigInt(digits);
    if (n > max) max = n;
  }
  return max;
}
