/**
 * Licence attribution for an image: every installed package's
 * /usr/share/doc/<pkg>/copyright, joined into one file, plus the licence
 * short names found in machine-readable (DEP-5) copyright files.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { InstalledPackage } from "./lockfile.ts";

export interface LicenceSummary {
  /** Package name → licence short names (empty when the file is free-form). */
  packages: Record<string, string[]>;
  /** Packages without a copyright file. */
  missing: string[];
}

/** Short names from `License:` fields of a DEP-5 file (first line of each field). */
export function licenceNames(copyright: string): string[] {
  const names = new Set<string>();
  for (const m of copyright.matchAll(/^License:[ \t]*(\S[^\n]*)$/gm)) names.add(m[1]!.trim());
  return [...names].sort();
}

export function writeLicences(
  tree: string,
  packages: InstalledPackage[],
  outFile: string,
): LicenceSummary {
  const summary: LicenceSummary = { packages: {}, missing: [] };
  const parts: string[] = [
    "Licence attribution: the copyright file of every package in this image.\n",
  ];
  const seen = new Set<string>();
  for (const p of [...packages].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (seen.has(p.name)) continue;
    seen.add(p.name);
    const file = join(tree, "usr/share/doc", p.name, "copyright");
    if (!existsSync(file)) {
      summary.missing.push(p.name);
      continue;
    }
    const text = readFileSync(file, "utf8");
    summary.packages[p.name] = licenceNames(text);
    parts.push(
      `${"=".repeat(78)}\nPackage: ${p.name} ${p.version}\n${"=".repeat(78)}\n${text.trimEnd()}\n`,
    );
  }
  writeFileSync(outFile, parts.join("\n"));
  return summary;
}
