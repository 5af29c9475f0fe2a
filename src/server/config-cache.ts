/**
 * Read-mostly configuration (applications, groups by track, channel targets) cached for a
 * short time so a steady-state update check costs only its instance row. Admin writes in this
 * process clear it at once; other replicas see a change within TTL_MS. Anything the rollout
 * policy decides on (enabled, halted, counters) is always read fresh inside the transaction.
 */
import type { Kysely } from "kysely";
import type { Database } from "./db/schema.ts";

const TTL_MS = 2000;

export interface ChannelTarget {
  channelId: string;
  targetVersion: string | null;
  allowDowngrade: boolean;
  floors: string[];
  blacklist: Set<string>;
}

export interface GroupRef {
  id: string;
  channelId: string | null;
}

interface Entry<T> {
  at: number;
  value: Promise<T>;
  /** Set once the load has finished: read without waiting by the peek methods. */
  loaded?: { value: T };
}

export class ConfigCache {
  readonly #db: Kysely<Database>;
  #apps = new Map<string, Entry<boolean>>();
  #groups = new Map<string, Entry<GroupRef | null>>();
  #channels = new Map<string, Entry<ChannelTarget | null>>();

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  clear(): void {
    this.#apps.clear();
    this.#groups.clear();
    this.#channels.clear();
  }

  /**
   * The load's promise is what is cached: the checks that arrive while it runs wait for it
   * instead of each running the same queries (with 32 connections, dozens did every TTL_MS).
   */
  #cached<T>(map: Map<string, Entry<T>>, key: string, load: () => Promise<T>): Promise<T> {
    const now = performance.now();
    const hit = map.get(key);
    if (hit && now - hit.at < TTL_MS) return hit.value;
    const value = load();
    if (map.size > 10_000) map.clear();
    const entry: Entry<T> = { at: now, value };
    map.set(key, entry);
    value.then(
      (v) => {
        entry.loaded = { value: v };
      },
      // A failed load is not kept: the next check tries again.
      () => {
        if (map.get(key) === entry) map.delete(key);
      },
    );
    return value;
  }

  /** A fresh, loaded entry's value; undefined when it would have to be (re)loaded. */
  #peek<T>(map: Map<string, Entry<T>>, key: string): T | undefined {
    const hit = map.get(key);
    if (!hit?.loaded || performance.now() - hit.at >= TTL_MS) return undefined;
    return hit.loaded.value;
  }

  peekAppExists(appId: string): boolean | undefined {
    return this.#peek(this.#apps, appId);
  }

  /** The group of a track (null: none), or undefined when not at hand. */
  peekGroup(appId: string, track: string): GroupRef | null | undefined {
    return this.#peek(this.#groups, `${appId}\u0000${track}`);
  }

  peekChannel(channelId: string): ChannelTarget | null | undefined {
    return this.#peek(this.#channels, channelId);
  }

  appExists(appId: string): Promise<boolean> {
    return this.#cached(this.#apps, appId, async () => {
      const row = await this.#db
        .selectFrom("applications")
        .select("id")
        .where("id", "=", appId)
        .executeTakeFirst();
      return row !== undefined;
    });
  }

  group(appId: string, track: string): Promise<GroupRef | null> {
    return this.#cached(this.#groups, `${appId}\u0000${track}`, async () => {
      const g = await this.#db
        .selectFrom("groups")
        .select(["id", "channel_id"])
        .where("app_id", "=", appId)
        .where("track", "=", track)
        .executeTakeFirst();
      return g ? { id: g.id, channelId: g.channel_id } : null;
    });
  }

  channel(channelId: string): Promise<ChannelTarget | null> {
    return this.#cached(this.#channels, channelId, async () => {
      const c = await this.#db
        .selectFrom("channels")
        .leftJoin("packages", "packages.id", "channels.package_id")
        .select(["channels.id", "channels.allow_downgrade", "packages.version"])
        .where("channels.id", "=", channelId)
        .executeTakeFirst();
      if (!c) return null;
      const list = async (table: "channel_floors" | "channel_blacklist") =>
        (
          await this.#db
            .selectFrom(table)
            .innerJoin("packages", "packages.id", `${table}.package_id`)
            .select("packages.version")
            .where(`${table}.channel_id`, "=", channelId)
            .execute()
        ).map((r) => r.version);
      return {
        channelId: c.id,
        targetVersion: c.version ?? null,
        allowDowngrade: c.allow_downgrade === 1,
        floors: await list("channel_floors"),
        blacklist: new Set(await list("channel_blacklist")),
      };
    });
  }
}
