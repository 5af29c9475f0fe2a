/**
 * A simulated fleet: N hosts that check in with Omaha and walk granted updates through
 * download, install and reboot like update_engine does. Drives rollouts in tests and benches
 * (`slipway simulate`). Only the Omaha codec and fetch: it talks to a real server.
 */
import { randomUUID } from "node:crypto";
import {
  decodeResponse,
  ErrorCode,
  EventResult,
  EventType,
  encodeRequest,
  type RequestApp,
  type RequestEvent,
} from "../omaha/index.ts";

type Phase = "idle" | "granted" | "downloading" | "downloaded" | "installed";

export interface SimHost {
  machineId: string;
  version: string;
  bootId: string;
  phase: Phase;
  target: string | null;
  /** Version before the current update (sent as previousversion after the reboot). */
  previous: string | null;
  failed: boolean;
}

export interface FleetOptions {
  /** Omaha endpoint, e.g. http://127.0.0.1:8080/v1/update/ */
  endpoint: string;
  appId: string;
  track: string;
  hosts: number;
  startVersion: string;
  /** Probability that a reboot comes back on the old version (a rollback). */
  rollbackRate?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Called for every event the server acknowledged. */
  onAck?: (machineId: string, ev: RequestEvent) => void;
  idPrefix?: string;
  random?: () => number;
}

export interface RoundStats {
  requests: number;
  failures: number;
  granted: number;
  completed: number;
  rolledBack: number;
}

export class Fleet {
  readonly hosts: SimHost[];
  readonly #o: FleetOptions;

  constructor(o: FleetOptions) {
    this.#o = o;
    const prefix = o.idPrefix ?? "sim";
    this.hosts = Array.from({ length: o.hosts }, (_, i) => ({
      machineId: `${prefix}-${String(i).padStart(6, "0")}`,
      version: o.startVersion,
      bootId: randomUUID(),
      phase: "idle" as Phase,
      target: null,
      previous: null,
      failed: false,
    }));
  }

  versions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const h of this.hosts) out[h.version] = (out[h.version] ?? 0) + 1;
    return out;
  }

  /** Every host takes its next step once. Network failures leave a host where it was. */
  async round(): Promise<RoundStats> {
    const stats: RoundStats = { requests: 0, failures: 0, granted: 0, completed: 0, rolledBack: 0 };
    let next = 0;
    const worker = async () => {
      while (next < this.hosts.length) {
        const h = this.hosts[next++]!;
        stats.requests++;
        try {
          await this.#step(h, stats);
        } catch {
          stats.failures++;
        }
      }
    };
    await Promise.all(Array.from({ length: this.#o.concurrency ?? 16 }, worker));
    return stats;
  }

  async #send(h: SimHost, app: Partial<RequestApp>) {
    const body = encodeRequest({
      protocol: "3.0",
      version: "slipway-simulate",
      installSource: "scheduler",
      isMachine: true,
      apps: [
        {
          appId: this.#o.appId,
          machineId: h.machineId,
          version: h.version,
          track: this.#o.track,
          bootId: h.bootId,
          events: [],
          ...app,
        },
      ],
    });
    const res = await fetch(this.#o.endpoint, {
      method: "POST",
      headers: { "content-type": "text/xml" },
      body,
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    const app0 = decodeResponse(text).apps[0];
    if (app0?.status !== "ok") throw new Error(`app status ${app0?.status}`);
    for (const [i, ev] of (app.events ?? []).entries()) {
      if (app0.events[i]?.status === "ok") this.#o.onAck?.(h.machineId, ev);
    }
    return app0;
  }

  async #event(h: SimHost, ev: RequestEvent, then: Phase): Promise<void> {
    await this.#send(h, { events: [ev] });
    h.phase = then;
  }

  async #step(h: SimHost, stats: RoundStats): Promise<void> {
    switch (h.phase) {
      case "idle": {
        const app = await this.#send(h, { ping: { active: 1 }, updateCheck: {} });
        const m = app.updateCheck?.status === "ok" ? app.updateCheck.manifest : undefined;
        if (m) {
          h.target = m.version;
          h.phase = "granted";
          stats.granted++;
        }
        return;
      }
      case "granted":
        return this.#event(
          h,
          { type: EventType.DownloadStarted, result: EventResult.Success },
          "downloading",
        );
      case "downloading":
        return this.#event(
          h,
          { type: EventType.DownloadFinished, result: EventResult.Success },
          "downloaded",
        );
      case "downloaded":
        return this.#event(
          h,
          { type: EventType.UpdateComplete, result: EventResult.Success },
          "installed",
        );
      case "installed": {
        const rollback = (this.#o.random ?? Math.random)() < (this.#o.rollbackRate ?? 0);
        const bootId = randomUUID();
        if (rollback) {
          await this.#send(
            { ...h, bootId },
            {
              events: [
                {
                  type: EventType.UpdateComplete,
                  result: EventResult.Error,
                  errorCode: ErrorCode.Rollback,
                },
              ],
            },
          );
          h.failed = true;
          stats.rolledBack++;
        } else {
          await this.#send(
            { ...h, bootId, version: h.target! },
            {
              ping: { active: 1 },
              updateCheck: {},
              events: [
                {
                  type: EventType.UpdateComplete,
                  result: EventResult.SuccessReboot,
                  previousVersion: h.version,
                },
              ],
            },
          );
          h.previous = h.version;
          h.version = h.target!;
          stats.completed++;
        }
        h.bootId = bootId;
        h.phase = "idle";
        h.target = null;
        return;
      }
    }
  }
}
