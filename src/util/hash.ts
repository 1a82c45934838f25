import { createHash } from "node:crypto";

/** Hex sha256 of the parts, each length-prefixed so ("ab","c") and ("a","bc") differ. */
export function sha256(...parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(`${Buffer.byteLength(p)}:`).update(p);
  return h.digest("hex");
}
