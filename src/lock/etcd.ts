/**
 * Minimal etcd v3 client over the JSON gRPC gateway (`/v3/kv/range`,
 * `/v3/kv/txn`; etcd 3.4+ serves it at /v3/). Keys and values travel base64
 * encoded; 64-bit numbers arrive as strings and proto3 leaves zero values out.
 * Only what the reboot semaphore needs: read a key, and compare-and-swap it.
 */
import { SlipwayError } from "../errors.ts";
import { requestText } from "./http.ts";

export interface EtcdKv {
  value: string;
  modRevision: string;
  version: string;
}

export interface EtcdClientOptions {
  endpoints: string[];
  /** Per-request timeout; a dead endpoint must not hang the agent. */
  timeoutMs?: number;
}

/** The network or etcd itself failed (as opposed to a CAS conflict). */
export class EtcdUnavailableError extends SlipwayError {
  constructor(message: string, opts: { where?: string; cause?: unknown } = {}) {
    super(message, opts);
    this.name = "EtcdUnavailableError";
  }
}

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string | undefined): string =>
  s === undefined ? "" : Buffer.from(s, "base64").toString("utf8");

interface RawKv {
  key?: string;
  value?: string;
  mod_revision?: string;
  version?: string;
}

export class EtcdClient {
  readonly endpoints: string[];
  private readonly timeoutMs: number;

  constructor(opts: EtcdClientOptions) {
    if (opts.endpoints.length === 0) throw new SlipwayError("no etcd endpoints configured");
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ""));
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  /** POST to the first endpoint that answers; remember nothing (endpoints are few). */
  private async call(path: string, body: unknown): Promise<Record<string, unknown>> {
    const errors: string[] = [];
    for (const endpoint of this.endpoints) {
      let res: { status: number; text: string };
      try {
        res = await requestText(`${endpoint}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          timeoutMs: this.timeoutMs,
        });
      } catch (err) {
        errors.push(`${endpoint}: ${(err as Error).message}`);
        continue;
      }
      const text = res.text;
      if (res.status !== 200) {
        errors.push(`${endpoint}${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
        continue;
      }
      try {
        return JSON.parse(text) as Record<string, unknown>;
      } catch {
        errors.push(`${endpoint}${path}: answer is not JSON`);
      }
    }
    throw new EtcdUnavailableError(`etcd unreachable: ${errors.join("; ")}`, {
      where: "ETCD_ENDPOINTS",
    });
  }

  async get(key: string): Promise<EtcdKv | undefined> {
    const res = await this.call("/v3/kv/range", { key: b64(key) });
    const kv = (res.kvs as RawKv[] | undefined)?.[0];
    if (kv === undefined) return undefined;
    return {
      value: unb64(kv.value),
      modRevision: kv.mod_revision ?? "0",
      version: kv.version ?? "0",
    };
  }

  /**
   * Write `value` only if the key is unchanged since it was read
   * (`expectModRevision`), or does not exist (`undefined`). True when written.
   */
  async compareAndSwap(
    key: string,
    expectModRevision: string | undefined,
    value: string,
  ): Promise<boolean> {
    const compare =
      expectModRevision === undefined
        ? { key: b64(key), result: "EQUAL", target: "VERSION", version: "0" }
        : { key: b64(key), result: "EQUAL", target: "MOD", mod_revision: expectModRevision };
    const res = await this.call("/v3/kv/txn", {
      compare: [compare],
      success: [{ request_put: { key: b64(key), value: b64(value) } }],
    });
    return res.succeeded === true;
  }

  /** Unconditional delete (tests and `lock reset`-style admin only). */
  async delete(key: string): Promise<void> {
    await this.call("/v3/kv/deleterange", { key: b64(key) });
  }
}
