/** Where the trailing digits of an ID start (id.length when it has none). */
function digitsStart(id: string): number {
  let i = id.length;
  while (i > 0) {
    const c = id.charCodeAt(i - 1);
    if (c < 48 || c > 57) break;
    i--;
  }
  return i;
}

function samePrefix(a: string, b: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false;
  return true;
}

function isLetters(id: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = id.charCodeAt(i) | 32;
    if (c < 97 || c > 122) return false;
  }
  return true;
}

/**
 * Orders IDs like `U2 < U10` (numeric part compared as a number when both IDs are the same letters
 * then digits), everything else by code units: a total, locale-free order so output never depends
 * on the machine. Allocation-free: MIND-large has 711k users to sort.
 */
export function compareIds(a: string, b: string): number {
  const da = digitsStart(a);
  const db = digitsStart(b);
  if (da === db && da < a.length && db < b.length && samePrefix(a, b, da) && isLetters(a, da)) {
    let za = da;
    while (za < a.length - 1 && a.charCodeAt(za) === 48) za++;
    let zb = db;
    while (zb < b.length - 1 && b.charCodeAt(zb) === 48) zb++;
    const la = a.length - za;
    const lb = b.length - zb;
    if (la !== lb) return la - lb;
    for (let i = 0; i < la; i++) {
      const d = a.charCodeAt(za + i) - b.charCodeAt(zb + i);
      if (d !== 0) return d;
    }
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortIds(ids: Iterable<string>): string[] {
  return [...ids].sort(compareIds);
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
