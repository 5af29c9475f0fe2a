/**
 * The reboot semaphore on etcd v3: one key per group holding airlock's JSON
 * value, every change a compare-and-swap on the key's mod_revision so
 * concurrent agents can never over-commit the places.
 */
import { SlipwayError } from "../errors.ts";
import type { EtcdClient } from "./etcd.ts";
import {
  encodeSemaphore,
  newSemaphore,
  parseSemaphore,
  release,
  type Semaphore,
  setMax,
  tryAcquire,
  validateGroup,
  validateHolderId,
} from "./semaphore.ts";
import type { RebootLock } from "./types.ts";

/** airlock's key layout, so airlock and slipway can share a fleet's semaphore. */
export const DEFAULT_KEY_PREFIX = "com.coreos.airlock/groups/";

export function semaphoreKey(group: string, prefix = DEFAULT_KEY_PREFIX): string {
  return `${prefix}${validateGroup(group)}/v1/semaphore`;
}

export interface EtcdSemaphoreOptions {
  client: EtcdClient;
  group: string;
  /** Places created when the key does not exist yet. */
  defaultMax?: number;
  keyPrefix?: string;
  /** CAS attempts before giving up under heavy contention. */
  maxAttempts?: number;
}

export class EtcdSemaphore {
  readonly key: string;
  private readonly client: EtcdClient;
  private readonly defaultMax: number;
  private readonly maxAttempts: number;

  constructor(opts: EtcdSemaphoreOptions) {
    this.client = opts.client;
    this.key = semaphoreKey(opts.group, opts.keyPrefix);
    this.defaultMax = opts.defaultMax ?? 1;
    this.maxAttempts = opts.maxAttempts ?? 200;
  }

  /** Current value; a missing key reads as an empty semaphore with the default max. */
  async status(): Promise<Semaphore & { exists: boolean }> {
    const kv = await this.client.get(this.key);
    if (kv === undefined) return { ...newSemaphore(this.defaultMax), exists: false };
    return { ...parseSemaphore(kv.value, `etcd key ${this.key}`), exists: true };
  }

  /** Read-modify-CAS loop; `change` returns undefined when nothing needs writing. */
  private async update<T>(
    change: (s: Semaphore) => { next: Semaphore | undefined; result: T },
  ): Promise<T> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const kv = await this.client.get(this.key);
      const current =
        kv === undefined
          ? newSemaphore(this.defaultMax)
          : parseSemaphore(kv.value, `etcd key ${this.key}`);
      const { next, result } = change(current);
      if (next === undefined) return result;
      if (await this.client.compareAndSwap(this.key, kv?.modRevision, encodeSemaphore(next))) {
        return result;
      }
      // Someone else changed the key between our read and write: back off a little.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 5 * (attempt + 1))));
    }
    throw new SlipwayError(`gave up after ${this.maxAttempts} conflicting updates`, {
      where: `etcd key ${this.key}`,
    });
  }

  /** True when `id` holds a place afterwards (also when it already did). */
  async lock(id: string): Promise<boolean> {
    validateHolderId(id);
    return this.update((s) => {
      const out = tryAcquire(s, id);
      if (out.kind === "acquired") return { next: out.next, result: true };
      return { next: undefined, result: out.kind === "already-held" };
    });
  }

  /** True when `id` held a place and gave it back. */
  async unlock(id: string): Promise<boolean> {
    validateHolderId(id);
    return this.update((s) => {
      const next = release(s, id);
      return { next, result: next !== undefined };
    });
  }

  /** Returns the previous max. */
  async setMax(max: number): Promise<number> {
    return this.update((s) => ({ next: setMax(s, max), result: s.total_slots }));
  }

  /** The RebootLock view for one host. */
  forHolder(id: string): RebootLock {
    validateHolderId(id);
    return {
      describe: `etcd semaphore ${this.key} (${this.client.endpoints.join(",")})`,
      acquire: () => this.lock(id),
      release: async () => {
        await this.unlock(id);
      },
    };
  }
}
