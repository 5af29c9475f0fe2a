/**
 * The on-host updater. One state machine (state.ts) drives it:
 * after boot it runs the health gate and settles the previous update
 * (success → slot marked good, 3/2 reported, reboot lock released; back on
 * the old slot → 3/0 with the rollback code, version not retried); then it
 * checks on a jittered schedule, downloads, verifies and writes the passive
 * slot, points the boot state at it and reboots under the configured
 * strategy.
 */
import { readFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { espSlotDir, slotConfig } from "../boot/grubcfg.ts";
import {
  markBad,
  markGood,
  otherSlot,
  SLOT_LABEL,
  type SlotName,
  setPrimary,
} from "../boot/slots.ts";
import { readGpt } from "../disk/gpt.ts";
import { ErrorCode, EventResult, EventType, type RequestEvent } from "../omaha/index.ts";
import { type BootStateStore, bootedSlot, bootStateStore, readOsVersion } from "./bootstate.ts";
import type { Clock } from "./clock.ts";
import type { AgentConfig } from "./config.ts";
import { DownloadError, download } from "./download.ts";
import { type EspStore, openEsp } from "./esp.ts";
import { checkHealth, type SystemStateProbe } from "./health.ts";
import type { HostLayout } from "./layout.ts";
import { OmahaClient, OmahaServerError } from "./omaha-client.ts";
import { type PayloadEngine, PayloadSourceError } from "./payload-port.ts";
import { lockForStrategy, RebootTask } from "./reboot.ts";
import { CheckSchedule, type ScheduleOptions } from "./schedule.ts";
import { type AgentEvent, type AgentState, type TransitionRecord, transition } from "./state.ts";
import { loadState, type PersistedState, saveState } from "./store.ts";
import { loggedInUsers, wall } from "./users.ts";
import { compareVersions } from "./version.ts";

export interface AgentDeps {
  config: AgentConfig;
  layout: HostLayout;
  clock: Clock;
  payload: PayloadEngine;
  machineId: string;
  systemState: SystemStateProbe;
  rebootNow: () => Promise<void>;
  log?: (line: string) => void;
  schedule?: ScheduleOptions;
  /** Reboot windows in UTC (tests). */
  utc?: boolean;
  warn?: (message: string) => Promise<void>;
}

export interface AgentStatus {
  state: AgentState;
  currentVersion: string;
  bootedSlot: SlotName;
  lastCheck: string | undefined;
  lastCheckResult: string | undefined;
  nextCheck: string | undefined;
  newVersion: string | undefined;
  newSize: number | undefined;
  progress: { done: number; total: number } | undefined;
  waitingFor: string | undefined;
  lastError: string | undefined;
  failedVersions: string[];
  strategy: string;
  history: TransitionRecord[];
}

const HISTORY = 50;

export class Agent {
  private readonly d: AgentDeps;
  private readonly schedule: CheckSchedule;
  private readonly boot: BootStateStore;
  private readonly esp: EspStore;
  private readonly omaha: OmahaClient | undefined;
  private readonly statePath: string;
  private readonly downloadDir: string;
  private persisted: PersistedState;
  private state: AgentState = "initializing";
  private history: TransitionRecord[] = [];
  private cancelNext: (() => void) | undefined;
  private nextCheckAt: number | undefined;
  private busy: Promise<void> | undefined;
  private reboot: RebootTask | undefined;
  private cancelRetry: (() => void) | undefined;
  private stopped = false;
  readonly booted: SlotName;
  readonly version: string;
  private readonly bootId: string;
  private info: {
    lastCheck?: string;
    lastCheckResult?: string;
    newVersion?: string;
    newSize?: number;
    progress?: { done: number; total: number };
    lastError?: string;
  } = {};

  constructor(deps: AgentDeps) {
    this.d = deps;
    this.schedule = new CheckSchedule(deps.schedule);
    this.statePath = join(deps.layout.stateDir, "agent.json");
    this.downloadDir = join(deps.layout.stateDir, "download");
    this.persisted = loadState(this.statePath);
    this.esp = openEsp(deps.layout.esp, join(deps.layout.stateDir, "tmp"));
    this.boot = bootStateStore(this.esp, deps.layout.disk);
    this.booted = bootedSlot(deps.layout.cmdline);
    this.version = readOsVersion(deps.layout.osRelease);
    this.bootId = readBootId(deps.layout.root);
    this.omaha = deps.config.server
      ? new OmahaClient({
          server: deps.config.server,
          appId: deps.config.appId,
          machineId: deps.machineId,
          bootId: this.bootId,
          track: deps.config.group,
          version: this.version,
        })
      : undefined;
  }

  private log(line: string): void {
    (this.d.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
  }

  private fire(event: AgentEvent, detail?: string): void {
    const from = this.state;
    const to = transition(from, event);
    this.state = to;
    const rec: TransitionRecord = {
      at: new Date(this.d.clock.now()).toISOString(),
      from,
      event,
      to,
    };
    if (detail !== undefined) rec.detail = detail;
    this.history.push(rec);
    if (this.history.length > HISTORY) this.history.shift();
    this.log(`state: ${from} --${event}--> ${to}${detail ? ` (${detail})` : ""}`);
  }

  private save(): void {
    saveState(this.statePath, this.persisted);
  }

  get currentState(): AgentState {
    return this.state;
  }

  status(): AgentStatus {
    return {
      state: this.state,
      currentVersion: this.version,
      bootedSlot: this.booted,
      lastCheck: this.info.lastCheck,
      lastCheckResult: this.info.lastCheckResult,
      nextCheck:
        this.nextCheckAt === undefined ? undefined : new Date(this.nextCheckAt).toISOString(),
      newVersion: this.info.newVersion ?? this.persisted.pending?.version,
      newSize: this.info.newSize,
      progress: this.info.progress,
      waitingFor: this.reboot?.waitingFor,
      lastError: this.info.lastError,
      failedVersions: [...this.persisted.failedVersions],
      strategy: this.d.config.strategy,
      history: [...this.history],
    };
  }

  /** Boot phase, then the check schedule. Resolves once the boot phase is done. */
  async start(opts: { checkNow?: boolean } = {}): Promise<void> {
    this.fire("started");
    if (this.persisted.pending !== undefined) await this.dropInterruptedStaging();
    const p = this.persisted.pending;
    if (p !== undefined && p.bootId === this.bootId) {
      this.info.newVersion = p.version;
      this.fire("still-staged", `${p.version} staged in ${SLOT_LABEL[p.slot]}, reboot pending`);
      if (!this.stopped) void this.startReboot();
      return;
    }
    try {
      await this.settleBoot();
      this.fire("healthy");
    } catch (err) {
      // A failed health gate has reported the rollback already: no second 3/0.
      await this.failed(err, ErrorCode.Error, !(err instanceof HealthGateFailed));
    }
    if (this.stopped) return;
    this.scheduleCheck(opts.checkNow ? 0 : this.schedule.firstDelay());
  }

  stop(): void {
    this.stopped = true;
    this.cancelNext?.();
    this.cancelRetry?.();
    this.reboot?.cancel();
  }

  private scheduleCheck(ms: number): void {
    this.cancelNext?.();
    if (this.stopped) return;
    this.nextCheckAt = this.d.clock.now() + ms;
    this.cancelNext = this.d.clock.schedule(ms, () => {
      void this.checkNow("scheduler");
    });
  }

  /** Wait for the running check cycle, if any (tests, `update check`). */
  async idle(): Promise<void> {
    while (this.busy) await this.busy;
  }

  /** One check cycle without arming the next one (`slipway agent --once`). */
  async checkNowUnscheduled(): Promise<void> {
    this.stopped = true;
    await this.checkNow("ondemandupdate");
  }

  /** One check cycle; a cycle already running is joined, not doubled. */
  checkNow(source: "scheduler" | "ondemandupdate" = "ondemandupdate"): Promise<void> {
    if (this.busy) return this.busy;
    if (this.state !== "idle") return Promise.resolve();
    this.busy = this.cycle(source).finally(() => {
      this.busy = undefined;
    });
    return this.busy;
  }

  // --- after boot --------------------------------------------------------

  /**
   * `pending` is saved just before the new slot is made primary. A stop in
   * between leaves a pending update whose slot still has priority 0 (GRUB never
   * zeroes a priority, so a real fallback keeps it above 0): nothing was staged,
   * nothing rolled back. Forget it, so it is neither rebooted into nor reported
   * as a rollback (which would halt a safe-mode group); the next check stages
   * the update again.
   */
  private async dropInterruptedStaging(): Promise<void> {
    const p = this.persisted.pending;
    if (p === undefined) return;
    const { state } = await this.boot.read();
    if (state[p.slot].priority > 0) return;
    this.log(
      `staging ${p.version} into ${SLOT_LABEL[p.slot]} was interrupted before the slot was made primary: discarded`,
    );
    this.persisted.pending = undefined;
    this.save();
  }

  private async settleBoot(): Promise<void> {
    const p = this.persisted.pending;
    const { state } = await this.boot.read();
    if (p !== undefined && this.booted === p.slot && this.version === p.version) {
      const health = await checkHealth(this.d.layout.healthDirs, this.d.systemState);
      if (!health.healthy) {
        this.log(`health gate failed on ${p.version}: ${health.problems.join("; ")}`);
        await this.boot.write(markBad(state, p.slot));
        this.persisted.failedVersions.push(p.version);
        this.persisted.pending = undefined;
        this.queue({
          type: EventType.UpdateComplete,
          result: EventResult.Error,
          errorCode: ErrorCode.Rollback,
          previousVersion: p.previousVersion,
        });
        this.save();
        await this.flushOutbox();
        // Back to the old slot; we still hold the reboot lock from before.
        this.log("rebooting into the previous slot");
        await this.d.rebootNow();
        throw new HealthGateFailed(`health gate failed: ${health.problems.join("; ")}`);
      }
      await this.boot.write(markGood(state, this.booted));
      this.persisted.pending = undefined;
      this.queue({
        type: EventType.UpdateComplete,
        result: EventResult.SuccessReboot,
        previousVersion: p.previousVersion,
      });
      this.save();
      this.log(`update to ${p.version} complete: slot ${SLOT_LABEL[this.booted]} marked good`);
    } else if (p !== undefined) {
      // GRUB fell back: the new slot did not come up (or we never rebooted
      // into it and the operator reset). Report once; never retry this version.
      this.log(
        `booted ${this.version} on ${SLOT_LABEL[this.booted]}, not ${p.version}: rolled back`,
      );
      await this.boot.write(markBad(state, p.slot));
      this.persisted.failedVersions.push(p.version);
      this.persisted.pending = undefined;
      this.queue({
        type: EventType.UpdateComplete,
        result: EventResult.Error,
        errorCode: ErrorCode.Rollback,
        previousVersion: this.version,
      });
      this.save();
    } else if (state[this.booted].successful !== 1) {
      const health = await checkHealth(this.d.layout.healthDirs, this.d.systemState);
      if (health.healthy) await this.boot.write(markGood(state, this.booted));
      else this.log(`not marking ${SLOT_LABEL[this.booted]} good: ${health.problems.join("; ")}`);
    } else {
      await this.reconcileMirror();
    }
    await this.releaseLockIfHeld();
    await this.flushOutbox();
  }

  private async reconcileMirror(): Promise<void> {
    try {
      const mirror = this.boot.readMirror();
      if (mirror === undefined) return;
      const { state } = await this.boot.read();
      if (JSON.stringify(mirror) !== JSON.stringify(state)) {
        this.log("GPT slot attributes differ from grubenv: rewriting the mirror");
        await this.boot.write(state);
      }
    } catch (err) {
      this.log(`cannot reconcile the GPT mirror: ${(err as Error).message}`);
    }
  }

  private async releaseLockIfHeld(): Promise<void> {
    if (!this.persisted.lockHeld) return;
    try {
      const lock = await lockForStrategy(this.d.config, this.d.machineId, (m) => this.log(m));
      await lock?.release();
      this.persisted.lockHeld = false;
      this.save();
      if (lock) this.log(`released the reboot lock: ${lock.describe}`);
    } catch (err) {
      this.log(`cannot release the reboot lock yet (will retry): ${(err as Error).message}`);
    }
  }

  private queue(ev: RequestEvent): void {
    this.persisted.outbox.push(ev);
  }

  private async flushOutbox(): Promise<void> {
    if (!this.omaha) {
      this.persisted.outbox = [];
      return;
    }
    while (this.persisted.outbox.length > 0) {
      const ev = this.persisted.outbox[0]!;
      try {
        await this.omaha.event(ev);
      } catch (err) {
        this.log(`event ${ev.type}/${ev.result} not delivered yet: ${(err as Error).message}`);
        return;
      }
      this.persisted.outbox.shift();
      this.save();
    }
  }

  private async report(ev: RequestEvent): Promise<void> {
    this.queue(ev);
    this.save();
    await this.flushOutbox();
  }

  // --- update cycle ------------------------------------------------------

  private async cycle(source: "scheduler" | "ondemandupdate"): Promise<void> {
    if (!this.omaha) {
      this.log("no SERVER configured: not checking");
      return;
    }
    this.fire("check", source);
    this.info.lastCheck = new Date(this.d.clock.now()).toISOString();
    let errorCode: number = ErrorCode.Error;
    // Only a failed update attempt is an event for the server: a check that did not get an
    // answer is not (a transient server error must not count as a host's failed update).
    let attempting = false;
    try {
      await this.releaseLockIfHeld();
      await this.flushOutbox();
      const uc = await this.omaha.updateCheck(source, {
        deltaOkay: !this.persisted.fullPayloadNext,
      });
      const m = uc.manifest;
      const offered = uc.status === "ok" && m ? m.version : undefined;
      if (
        offered === undefined ||
        // The server owns policy (a channel may roll back): take any other version.
        offered === this.version ||
        this.persisted.failedVersions.includes(offered)
      ) {
        this.info.lastCheckResult =
          offered === undefined
            ? "no update"
            : `not taking ${offered} (already running it, or it failed to boot here)`;
        this.fire("no-update", this.info.lastCheckResult);
        this.scheduleCheck(this.schedule.afterSuccess(uc.pollInterval));
        return;
      }
      const pkg = m!.packages[0];
      const sha = m!.actions.find((a) => a.event === "postinstall")?.sha256 ?? pkg?.hashSha256;
      if (!pkg || !sha)
        throw new OmahaServerError("update has no package or no SHA-256", this.d.config.server!);
      // The failed list only blocks what failed: a newer offer clears it.
      this.persisted.failedVersions = this.persisted.failedVersions.filter(
        (v) => compareVersions(v, offered) > 0,
      );
      this.info.newVersion = offered;
      this.info.newSize = pkg.size;
      this.info.lastCheckResult = `update ${offered} (${pkg.size} bytes)`;
      this.fire("update-found", this.info.lastCheckResult);
      attempting = true;

      this.fire("download-start");
      await this.report({ type: EventType.DownloadStarted, result: EventResult.Success });
      const payload = join(this.downloadDir, `${offered}.payload`.replace(/[^\w.-]/g, "_"));
      const base = uc.urls[0]!;
      const url = new URL(pkg.name, base.endsWith("/") ? base : `${base}/`).toString();
      await mkdir(this.downloadDir, { recursive: true });
      errorCode = ErrorCode.DownloadTransferError;
      await download({
        url,
        dest: payload,
        size: pkg.size,
        sha256: sha,
        onProgress: (done, total) => {
          this.info.progress = { done, total };
        },
      });
      this.fire("downloaded");
      await this.report({ type: EventType.DownloadFinished, result: EventResult.Success });

      errorCode = ErrorCode.DownloadPayloadVerificationError;
      await this.d.payload.verify(payload, this.d.config.publicKey);
      this.fire("verified");

      errorCode = ErrorCode.DownloadWriteError;
      try {
        await this.install(payload, offered);
      } catch (err) {
        if (err instanceof PayloadSourceError) {
          // The server grants one full retry to a host that asks without delta_okay.
          this.persisted.fullPayloadNext = true;
          delete this.persisted.slotSha256[this.booted];
          this.save();
        }
        throw err;
      }
      await rm(payload, { force: true });
      this.fire("finalized", `${offered} staged in ${SLOT_LABEL[otherSlot(this.booted)]}`);
      await this.report({ type: EventType.UpdateComplete, result: EventResult.Success });
      this.schedule.afterSuccess(uc.pollInterval);
      this.nextCheckAt = undefined;
      if (!this.stopped) void this.startReboot();
    } catch (err) {
      const code =
        err instanceof DownloadError
          ? err.code
          : err instanceof OmahaServerError
            ? ErrorCode.OmahaRequestError
            : errorCode;
      await this.failed(err, code, attempting);
      this.scheduleCheck(this.schedule.afterFailure());
    }
  }

  /** Write the passive slot and its boot files, then make it the next boot. */
  private async install(payload: string, version: string): Promise<void> {
    const target = otherSlot(this.booted);
    const before = (await this.boot.read()).state;
    // First make sure a half-written slot can never be booted.
    const unbootable = markBad(before, target);
    await this.boot.write(unbootable);
    delete this.persisted.slotSha256[target];
    this.save();
    this.info.progress = undefined;
    const sourceSha256 = this.persisted.slotSha256[this.booted];
    const staged = await this.d.payload.apply({
      payload,
      publicKey: this.d.config.publicKey,
      source: this.d.layout.slots[this.booted],
      ...(sourceSha256 ? { sourceSha256 } : {}),
      target: this.d.layout.slots[target],
      onProgress: (done, total) => {
        this.info.progress = { done, total };
      },
    });
    const dir = espSlotDir(target);
    const bootFiles: [string, Uint8Array][] = [];
    if (staged.kernel) bootFiles.push([`${dir}/vmlinuz`, staged.kernel]);
    if (staged.initrd) bootFiles.push([`${dir}/initrd`, staged.initrd]);
    // Both or neither: a full ESP is refused before the old pair is touched.
    await this.esp.writeFiles(bootFiles, `${SLOT_LABEL[target]}'s kernel and initrd`);
    const partuuid = this.slotPartuuid(target);
    if (partuuid) {
      const cfg = staged.verity ? { partuuid, verity: staged.verity } : { partuuid };
      await this.esp.write(`${dir}/slot.cfg`, Buffer.from(slotConfig(cfg)));
    }
    if (staged.sha256) this.persisted.slotSha256[target] = staged.sha256;
    this.persisted.fullPayloadNext = false;
    this.persisted.pending = {
      version,
      previousVersion: this.version,
      slot: target,
      stagedAt: new Date(this.d.clock.now()).toISOString(),
      bootId: this.bootId,
    };
    this.save();
    await this.boot.write(setPrimary(unbootable, target, { tries: this.d.config.bootTries }));
  }

  private slotPartuuid(slot: SlotName): string | undefined {
    if (!this.d.layout.disk) return undefined;
    const table = readGpt(this.d.layout.disk, { onWarning: () => {} });
    return table.partitions.find((p) => p.label === SLOT_LABEL[slot])?.uniqueGuid;
  }

  private async failed(err: unknown, code: number, report = true): Promise<void> {
    const msg = err instanceof Error ? err.message : String(err);
    this.info.lastError = msg;
    this.fire("fail", msg);
    if (report)
      try {
        await this.report({
          type: EventType.UpdateComplete,
          result: EventResult.Error,
          errorCode: code,
        });
      } catch (e) {
        this.log(`cannot report the error: ${(e as Error).message}`);
      }
    this.fire("reported");
  }

  private async startReboot(): Promise<void> {
    this.reboot = new RebootTask({
      config: this.d.config,
      clock: this.d.clock,
      holderId: this.d.machineId,
      log: (m) => this.log(m),
      onLockTaken: async () => {
        this.persisted.lockHeld = true;
        this.save();
      },
      loggedInUsers: () => loggedInUsers(this.d.layout.utmp),
      warn: this.d.warn ?? wall,
      rebootNow: async () => {
        this.fire("reboot");
        try {
          await this.d.rebootNow();
        } catch (err) {
          this.fire("fail", `reboot failed: ${(err as Error).message}`);
          throw err;
        }
      },
      utc: this.d.utc,
    });
    const task = this.reboot;
    try {
      const outcome = await task.run();
      this.log(`reboot task: ${outcome}`);
    } catch (err) {
      // The reboot command failed: stay staged and try again later.
      const wait = this.d.config.lockRetrySeconds * 1000;
      this.log(`reboot failed (${(err as Error).message}); trying again in ${wait / 1000} s`);
      this.cancelRetry = this.d.clock.schedule(wait, () => {
        if (!this.stopped && this.reboot === task && this.state === "updated-need-reboot") {
          void this.startReboot();
        }
      });
    }
  }

  /** Operator reset: undo a staged update and clear the failure memory. */
  async reset(): Promise<void> {
    await this.idle();
    this.reboot?.cancel();
    this.cancelRetry?.();
    this.reboot = undefined;
    const p = this.persisted.pending;
    if (p !== undefined && this.state === "updated-need-reboot") {
      const { state } = await this.boot.read();
      await this.boot.write(markBad(state, p.slot));
      this.persisted.pending = undefined;
    }
    this.persisted.failedVersions = [];
    this.schedule.failures = 0;
    this.save();
    this.info = {};
    if (this.state !== "idle") this.fire("reset", "operator reset");
    await this.releaseLockIfHeld();
    this.scheduleCheck(this.schedule.afterSuccess());
  }
}

/** The new slot failed the health gate: marked bad, rollback reported, reboot started. */
class HealthGateFailed extends Error {}

function readBootId(root: string): string {
  try {
    return readFileSync(join(root, "proc/sys/kernel/random/boot_id"), "utf8").trim();
  } catch {
    return "";
  }
}
