/**
 * Orders IDs like `U2 < U10` (numeric part compared as a number when both IDs are letters then
 * digits), everything else by code units: a total, locale-free order so output never depends on
 * the machine.
 */
export function compareIds(a: string, b: string): number {
  const ma = /^([A-Za-z]*)(\d+)$/.exec(a);
  const mb = /^([A-Za-z]*)(\d+)$/.exec(b);
  if (ma && mb && ma[1] === mb[1]) {
    const na = BigInt(ma[2]!);
    const nb = BigInt(mb[2]!);
    if (na !== nb) return na < nb ? -1 : 1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
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
