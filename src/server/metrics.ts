/**
 * Prometheus metrics: instances per version and channel (read from the database at scrape
 * time, so every replica reports the same truth), update outcomes, request latency.
 */
import type { Kysely } from "kysely";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Database } from "./db/schema.ts";

export class Metrics {
  readonly registry = new Registry();
  readonly #outcomes: Counter<"outcome">;
  readonly #latency: Histogram<"route" | "status">;

  constructor(db: Kysely<Database>) {
    this.#outcomes = new Counter({
      name: "slipway_update_outcomes_total",
      help: "Updates granted, completed, failed and rolled back, as seen by this server.",
      labelNames: ["outcome"],
      registers: [this.registry],
    });
    this.#latency = new Histogram({
      name: "slipway_http_request_duration_seconds",
      help: "HTTP request latency by route.",
      labelNames: ["route", "status"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5],
      registers: [this.registry],
    });
    new Gauge({
      name: "slipway_instances",
      help: "Known instances by application, channel and version.",
      labelNames: ["app", "channel", "version"],
      registers: [this.registry],
      async collect() {
        const rows = await db
          .selectFrom("instances")
          .leftJoin("groups", "groups.id", "instances.group_id")
          .leftJoin("channels", "channels.id", "groups.channel_id")
          .select((eb) => [
            "instances.app_id",
            "channels.name as channel",
            "instances.version",
            eb.fn.countAll<number>().as("n"),
          ])
          .groupBy(["instances.app_id", "channels.name", "instances.version"])
          .execute();
        this.reset();
        for (const r of rows) {
          this.set({ app: r.app_id, channel: r.channel ?? "", version: r.version }, Number(r.n));
        }
      },
    });
  }

  updateOutcome(outcome: "granted" | "complete" | "error" | "rollback"): void {
    this.#outcomes.inc({ outcome });
  }

  /** Histogram children by route and status: the label lookup runs once per pair, not per request. */
  readonly #latencyByRoute = new Map<string, Map<number, { observe(v: number): void }>>();

  observe(route: string, status: number, seconds: number): void {
    let byStatus = this.#latencyByRoute.get(route);
    if (!byStatus) {
      byStatus = new Map();
      this.#latencyByRoute.set(route, byStatus);
    }
    let child = byStatus.get(status);
    if (!child) {
      child = this.#latency.labels({ route, status: String(status) });
      byStatus.set(status, child);
    }
    child.observe(seconds);
  }
}
