/**
 * Parses MIND's `MM/DD/YYYY h:mm:ss AM` into a sortable number (ms, as if UTC); NaN if it is not that.
 * Month, day and hour may have one or two digits; minutes and seconds have two.
 */
export function parseMindTime(text: string): number {
  return parseMindTimeAt(text, 0, text.length);
}

/**
 * parseMindTime on `text[start, end)`, without slicing: validate calls it on every behaviors row.
 */
export function parseMindTimeAt(text: string, start: number, end: number): number {
  let i = start;
  const num = (minDigits: number, maxDigits: number): number => {
    let v = 0;
    const from = i;
    while (i < end && i - from < maxDigits) {
      const c = text.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      v = v * 10 + c;
      i++;
    }
    return i - from >= minDigits ? v : -1;
  };
  const sep = (code: number): boolean => i < end && text.charCodeAt(i++) === code;
  const mo = num(1, 2);
  if (mo < 0 || !sep(47)) return Number.NaN;
  const d = num(1, 2);
  if (d < 0 || !sep(47)) return Number.NaN;
  const y = num(4, 4);
  if (y < 0 || !sep(32)) return Number.NaN;
  const h = num(1, 2);
  if (h < 0 || !sep(58)) return Number.NaN;
  const mi = num(2, 2);
  if (mi < 0 || !sep(58)) return Number.NaN;
  const s = num(2, 2);
  if (s < 0 || !sep(32) || end - i !== 2 || text.charCodeAt(i + 1) !== 77) return Number.NaN;
  const ampm = text.charCodeAt(i);
  if (ampm !== 65 && ampm !== 80) return Number.NaN;
  const hour = (h % 12) + (ampm === 80 ? 12 : 0);
  return Date.UTC(y, mo - 1, d, hour, mi, s);
}
