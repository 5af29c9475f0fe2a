/**
 * The resume journal: a small JSON file beside the target saying how many
 * leading chunks of which payload plan are durably on the target. Written
 * only after the target was synced, replaced atomically (temp + rename).
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";

export interface JournalState {
  format: 1;
  /** SHA-256 of the payload's manifest section. */
  manifest: string;
  plan: string;
  /** Chunks [0, chunksDone) are written and synced. */
  chunksDone: number;
}

export function readJournal(path: string): JournalState | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
  const j = raw as JournalState;
  const ok =
    typeof j === "object" &&
    j !== null &&
    j.format === 1 &&
    typeof j.manifest === "string" &&
    typeof j.plan === "string" &&
    Number.isSafeInteger(j.chunksDone) &&
    j.chunksDone >= 0;
  return ok ? j : undefined;
}

export function writeJournal(path: string, state: JournalState): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state)}\n`);
  renameSync(tmp, path);
}

export function removeJournal(path: string): void {
  rmSync(path, { force: true });
  rmSync(`${path}.tmp`, { force: true });
}
