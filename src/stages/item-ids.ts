// Items that are not one namespace of IDs (describe's categories and subcategories, factors' users
// and news) are named `<kind>:<id>`: the kind tells a reader, merge and the report what the ID names.

export function kindedId<K extends string>(kind: K, id: string): string {
  return `${kind}:${id}`;
}

/** `<kind>:<id>` with one of `kinds`, else undefined. */
export function splitKindedId<K extends string>(itemId: string, kinds: readonly K[]): { kind: K; id: string } | undefined {
  const colon = itemId.indexOf(":");
  if (colon < 1 || colon === itemId.length - 1) return undefined;
  const kind = itemId.slice(0, colon);
  return (kinds as readonly string[]).includes(kind) ? { kind: kind as K, id: itemId.slice(colon + 1) } : undefined;
}
