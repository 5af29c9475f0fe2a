/**
 * Getting from "update staged" to a reboot under the configured strategy:
 * wait for the reboot window, take the fleet lock (etcd semaphore or
 * FleetLock) when the strategy wants one, warn logged-in users and give them
 * time, then reboot. A lock that cannot be taken, or a lock service that
 * cannot be reached, means no reboot: try again later.
 */
import { SlipwayError } from "../errors.ts";
import { EtcdClient } from "../lock/etcd.ts";
import { EtcdSemaphore } from "../lock/etcd-semaphore.ts";
import { FleetLockClient } from "../lock/fleetlock.ts";
import type { RebootLock } from "../lock/types.ts";
import type { Clock } from "./clock.ts";
import type { AgentConfig } from "./config.ts";
import { describeWindow, msUntilWindow } from "./window.ts";

/** The lock for a strategy, or undefined when the strategy reboots without one. */
export async function lockForStrategy(
  config: AgentConfig,
  holderId: string,
  log: (m: string) => void,
): Promise<RebootLock | undefined> {
  const etcd = () =>
    new EtcdSemaphore({
      client: new EtcdClient({ endpoints: config.etcdEndpoints }),
      group: config.lockGroup,
      defaultMax: config.lockMax,
      keyPrefix: config.etcdLockPrefix,
    });
  switch (config.strategy) {
    case "reboot":
    case "off":
      return undefined;
    case "etcd-lock":
      // A missing setting means "no reboot" (the caller retries), not a crash.
      if (config.etcdEndpoints.length === 0) {
        throw new SlipwayError("REBOOT_STRATEGY=etcd-lock needs ETCD_ENDPOINTS", {
          where: config.sources.REBOOT_STRATEGY ?? "update.conf",
        });
      }
      return etcd().forHolder(holderId);
    case "fleetlock":
      if (!config.fleetlockUrl) {
        throw new SlipwayError("REBOOT_STRATEGY=fleetlock needs FLEETLOCK_URL", {
          where: config.sources.REBOOT_STRATEGY ?? "update.conf",
        });
      }
      return new FleetLockClient({
        baseUrl: config.fleetlockUrl!,
        id: holderId,
        group: config.lockGroup,
      });
    case "best-effort": {
      if (config.etcdEndpoints.length === 0) return undefined;
      const sem = etcd();
      try {
        await sem.status();
        return sem.forHolder(holderId);
      } catch (err) {
        log(
          `best-effort: etcd not reachable (${(err as Error).message}); rebooting without a lock`,
        );
        return undefined;
      }
    }
  }
}

export interface RebootDeps {
  config: AgentConfig;
  clock: Clock;
  holderId: string;
  log: (m: string) => void;
  /** Persist "we hold the lock" before rebooting so the next boot releases it. */
  onLockTaken: () => Promise<void>;
  loggedInUsers: () => string[];
  warn: (message: string) => Promise<void>;
  rebootNow: () => Promise<void>;
  /** Evaluate windows in UTC (tests); local time otherwise. */
  utc?: boolean;
  lockFor?: typeof lockForStrategy;
}

export type RebootOutcome = "rebooted" | "staged" | "cancelled";

export class RebootTask {
  private cancelled = false;
  private readonly d: RebootDeps;
  /** What the task waits for now, for status. */
  waitingFor = "";

  constructor(deps: RebootDeps) {
    this.d = deps;
  }

  cancel(): void {
    this.cancelled = true;
  }

  async run(): Promise<RebootOutcome> {
    const { config, clock, log } = this.d;
    if (config.strategy === "off") {
      this.waitingFor = "REBOOT_STRATEGY=off: reboot by hand to finish the update";
      log(this.waitingFor);
      return "staged";
    }
    for (;;) {
      if (this.cancelled) return "cancelled";
      const wait = msUntilWindow(config.window, clock.now(), this.d.utc);
      if (wait > 0) {
        this.waitingFor = `reboot window (${describeWindow(config.window)}), ${Math.round(wait / 1000)} s away`;
        log(`waiting for the ${this.waitingFor}`);
        await clock.sleep(wait);
        continue;
      }
      let lock: RebootLock | undefined;
      try {
        lock = await (this.d.lockFor ?? lockForStrategy)(config, this.d.holderId, log);
        if (lock !== undefined) {
          this.waitingFor = `a place in ${lock.describe}`;
          if (!(await lock.acquire())) {
            log(`reboot lock busy: ${lock.describe}; retrying in ${config.lockRetrySeconds} s`);
            await clock.sleep(config.lockRetrySeconds * 1000);
            continue;
          }
          await this.d.onLockTaken();
          log(`took the reboot lock: ${lock.describe}`);
        }
      } catch (err) {
        log(
          `cannot take the reboot lock, not rebooting: ${(err as Error).message}; retrying in ${config.lockRetrySeconds} s`,
        );
        await clock.sleep(config.lockRetrySeconds * 1000);
        continue;
      }
      if (this.cancelled) {
        await lock?.release().catch(() => {});
        return "cancelled";
      }
      const users = this.d.loggedInUsers();
      if (users.length > 0 && config.rebootWarnSeconds > 0) {
        const msg = `slipway: rebooting in ${config.rebootWarnSeconds} s to finish an OS update (logged in: ${users.join(", ")})`;
        this.waitingFor = `logged-in users to finish (${config.rebootWarnSeconds} s)`;
        log(msg);
        await this.d.warn(msg);
        await clock.sleep(config.rebootWarnSeconds * 1000);
        if (this.cancelled) {
          await lock?.release().catch(() => {});
          return "cancelled";
        }
      }
      this.waitingFor = "reboot";
      log("rebooting");
      await this.d.rebootNow();
      return "rebooted";
    }
  }
}
