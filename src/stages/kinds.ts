// What a stage's items are. MIND has news and users; a stage over something else (issue 14's
// categories and subcategories) adds a kind here. Code that depends on the kind keeps one table
// per concern typed `Record<ItemKind, …>` (merge's known items, the report's example tabs), so tsc
// lists every place a new kind must be described.
export const ITEM_KINDS = ["news", "users"] as const;
export type ItemKind = (typeof ITEM_KINDS)[number];

export interface KindSpec {
  /** One item, as help texts name it. */
  item: string;
  /** How messages name IDs of this kind: "3 of 5 profile records name user IDs not in any --data split". */
  ids: string;
  /** Items are read from behaviors.tsv as well as news.tsv (the catalog loads it). */
  needsBehaviors: boolean;
  /**
   * Items are users described by a history: each record keeps the history it was written from
   * (RecordSource), a record without one is not merged, and merge uses a record in a split only
   * where the history rule allows (src/mind/history-rule.ts rule 3).
   */
  sourced: boolean;
}

export const KINDS: Record<ItemKind, KindSpec> = {
  news: { item: "a news ID", ids: "news IDs", needsBehaviors: false, sourced: false },
  users: { item: "a user ID", ids: "user IDs", needsBehaviors: true, sourced: true },
};
