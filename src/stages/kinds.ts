// What a stage's items are: news and users, and the categories and subcategories of the news
// (describe). A stage over something else adds a kind here. Code that depends on the kind keeps one
// table per concern typed `Record<ItemKind, …>` (merge's known items, the report's example tabs), so
// tsc lists every place a new kind must be described.
export const ITEM_KINDS = ["news", "users", "categories"] as const;
export type ItemKind = (typeof ITEM_KINDS)[number];

export interface KindSpec {
  /** One item, as help texts name it. */
  item: string;
  /** How messages name IDs of this kind: "3 of 5 profile records name user IDs not in any --data split". */
  ids: string;
  /** Items are read from behaviors.tsv as well as news.tsv (the catalog loads it). */
  needsBehaviors: boolean;
  /**
   * Items are written from the news of one split, the earliest in time that has theirs (describe:
   * a description goes into every split's rows), so the catalog reads the splits' times.
   */
  timeOrdered: boolean;
  /**
   * An item's answer is written from the news of many rows (describe: a category from its stories)
   * and goes into rows of every split: merged over other --data than it was made from, it would
   * carry those splits' stories (a later split's time) into these rows, so merge refuses that.
   */
  pooled: boolean;
  /**
   * Items are users described by a history: each record keeps the history it was written from
   * (RecordSource), a record without one is not merged, and merge uses a record in a split only
   * where the history rule allows (src/mind/history-rule.ts rule 3).
   */
  sourced: boolean;
}

export const KINDS: Record<ItemKind, KindSpec> = {
  news: { item: "a news ID", ids: "news IDs", needsBehaviors: false, timeOrdered: false, pooled: false, sourced: false },
  users: { item: "a user ID", ids: "user IDs", needsBehaviors: true, timeOrdered: true, pooled: false, sourced: true },
  categories: { item: "category:<name> or subcategory:<name>", ids: "categories", needsBehaviors: false, timeOrdered: true, pooled: true, sourced: false },
};

// ---- The IDs of categories items. MIND uses some names as a category and as a subcategory alike
// (`video`, `weather`), so an ID names which one it is: `category:<name>` or `subcategory:<name>`.

export const CATEGORY_KINDS = ["category", "subcategory"] as const;
export type CategoryKind = (typeof CATEGORY_KINDS)[number];

export const categoryItemId = (kind: CategoryKind, name: string): string => `${kind}:${name}`;

/** `category:<name>` or `subcategory:<name>`, else undefined. */
export function parseCategoryItemId(id: string): { kind: CategoryKind; name: string } | undefined {
  const colon = id.indexOf(":");
  if (colon < 1 || colon === id.length - 1) return undefined;
  const kind = id.slice(0, colon);
  return (CATEGORY_KINDS as readonly string[]).includes(kind) ? { kind: kind as CategoryKind, name: id.slice(colon + 1) } : undefined;
}

/** The categories items of a news row: its category and subcategory (the ones it has). */
export function categoryItemsOf(row: { category: string; subcategory: string }): string[] {
  const ids: string[] = [];
  if (row.category) ids.push(categoryItemId("category", row.category));
  if (row.subcategory) ids.push(categoryItemId("subcategory", row.subcategory));
  return ids;
}
