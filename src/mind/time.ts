const MIND_TIME = /^(\d{1,2})\/(\d{1,2})\/(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) (AM|PM)$/;

/** Parses MIND's `MM/DD/YYYY h:mm:ss AM` into a sortable number (ms, as if UTC); NaN if it is not that. */
export function parseMindTime(text: string): number {
  const m = MIND_TIME.exec(text);
  if (!m) return Number.NaN;
  const [, mo, d, y, h, mi, s, ampm] = m;
  let hour = Number(h) % 12;
  if (ampm === "PM") hour += 12;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), hour, Number(mi), Number(s));
}
