/**
 * Admin API tokens: "admin" may change things, "viewer" may read. Only a SHA-256 of each
 * token is stored; the token is shown once when created.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database, TokenTable } from "./db/schema.ts";

export type Scope = TokenTable["scope"];

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export async function createToken(
  db: Kysely<Database>,
  name: string,
  scope: Scope,
  now: number,
): Promise<{ id: string; token: string }> {
  const token = `slw_${randomBytes(32).toString("base64url")}`;
  const id = randomUUID();
  await db
    .insertInto("tokens")
    .values({ id, name, scope, token_hash: hashToken(token), created_at: now, last_used_at: null })
    .execute();
  return { id, token };
}

/** The scope of a presented token, or null when unknown. */
export async function checkToken(
  db: Kysely<Database>,
  token: string,
): Promise<{ id: string; name: string; scope: Scope } | null> {
  const row = await db
    .selectFrom("tokens")
    .select(["id", "name", "scope"])
    .where("token_hash", "=", hashToken(token))
    .executeTakeFirst();
  return row ?? null;
}

export async function hasTokens(db: Kysely<Database>): Promise<boolean> {
  return (await db.selectFrom("tokens").select("id").limit(1).executeTakeFirst()) !== undefined;
}
