// The items of describe: every distinct category and subcategory of the catalog's news, with their
// news (the offline answer and the report read them) and a subcategory's categories.
import type { Catalog, CatalogNews } from "../../mind/catalog.js";
import { categoryItemId, type CategoryKind } from "../kinds.js";

export interface CategoryItem {
  id: string;
  kind: CategoryKind;
  name: string;
  /** A subcategory: the categories its news are filed under (one in MIND), in catalog order. Empty for a category. */
  parents: string[];
  /**
   * Its news of the earliest split (in time order, history-rule.ts rule 1) that has any, in catalog
   * order: its description goes into the rows of every split, and a later split's stories would
   * bring that split's time into an earlier one's news text.
   */
  news: CatalogNews[];
}

/** One index per catalog: items, their news and parents, built on first use. */
const INDEXES = new WeakMap<Catalog, Map<string, CategoryItem>>();

/** Every distinct category, then every distinct subcategory, each in order of first appearance in the catalog. */
export function categoryIndex(catalog: Catalog): ReadonlyMap<string, CategoryItem> {
  let index = INDEXES.get(catalog);
  if (index) return index;
  const categories = new Map<string, CategoryItem>();
  const subcategories = new Map<string, CategoryItem>();
  const add = (map: Map<string, CategoryItem>, kind: CategoryKind, name: string, news: CatalogNews) => {
    if (!name) return undefined;
    let item = map.get(name);
    if (!item) map.set(name, (item = { id: categoryItemId(kind, name), kind, name, parents: [], news: [] }));
    item.news.push(news);
    return item;
  };
  for (const n of catalog.news.values()) {
    add(categories, "category", n.category, n);
    const sub = add(subcategories, "subcategory", n.subcategory, n);
    if (sub && n.category && !sub.parents.includes(n.category)) sub.parents.push(n.category);
  }
  const order = catalog.timeline.map((s) => s.name);
  for (const item of [...categories.values(), ...subcategories.values()]) {
    const earliest = order.find((split) => item.news.some((n) => n.inSplits.includes(split))) ?? item.news[0]!.split;
    item.news = item.news.filter((n) => n.inSplits.includes(earliest));
  }
  index = new Map([...categories.values(), ...subcategories.values()].map((i) => [i.id, i]));
  INDEXES.set(catalog, index);
  return index;
}

export function categoryItems(catalog: Catalog): string[] {
  return [...categoryIndex(catalog).keys()];
}

