/**
 * Parses MIND's `MM/DD/YYYY h:mm:ss AM` into a sortable number (ms, as if UTC); NaN if it is not that.
 * Month, day and hour may have one or two digits; minutes and seconds have two. The values must
 * name a real date and time (no 2/30, no 13 PM, no :60).
 */
export function parseMindTime(text: string): number {
  return parseMindTimeAt(text, 0, text.length);
}

const SLASH = 47;
const SPACE = 32;
const COLON = 58;

/**
 * parseMindTime on `text[start, end)`, without slicing: validate calls it on every behaviors row.
 * (No inner closures either: tsx wraps each one in a naming helper on every call.)
 */
export function parseMindTimeAt(text: string, start: number, end: number): number {
  // Fields in order: month, day, year, hour, minute, second; each with its digit counts and the
  // separator that must follow it.
  const v = FIELDS;
  let i = start;
  for (let f = 0; f < 6; f++) {
    const min = FIELD_MIN[f]!;
    const max = FIELD_MAX[f]!;
    let n = 0;
    let value = 0;
    while (i < end && n < max) {
      const c = text.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      value = value * 10 + c;
      i++;
      n++;
    }
    if (n < min || i >= end || text.charCodeAt(i) !== FIELD_SEP[f]) return Number.NaN;
    v[f] = value;
    i++;
  }
  if (end - i !== 2 || text.charCodeAt(i + 1) !== 77) return Number.NaN;
  const ampm = text.charCodeAt(i);
  if (ampm !== 65 && ampm !== 80) return Number.NaN;
  const month = v[0]!;
  const day = v[1]!;
  const year = v[2]!;
  const hour12 = v[3]!;
  const minute = v[4]!;
  const second = v[5]!;
  // Date.UTC would roll 13/45/2019 25:99:99 over into some other real time; such a value is not a time.
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  if (monthDays === undefined || day < 1 || day > monthDays || hour12 > 12 || minute > 59 || second > 59) return Number.NaN;
  return Date.UTC(year, month - 1, day, (hour12 % 12) + (ampm === 80 ? 12 : 0), minute, second);
}
/** parseMindTimeAt's fields, reused: it runs on every row of a behaviors file. */
const FIELDS = new Int32Array(6);
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const FIELD_MIN = [1, 1, 4, 1, 2, 2];
const FIELD_MAX = [2, 2, 4, 2, 2, 2];
const FIELD_SEP = [SLASH, SLASH, SPACE, COLON, COLON, SPACE];
