/**
 * The update service behind `POST /v1/update/`: takes a decoded Omaha request, records
 * instances and events, applies the rollout policy and builds the Omaha response. Each app of a
 * request is handled in one transaction that commits before the answer is sent, so an
 * acknowledged event is never lost.
 */
import type { Kysely, Transaction } from "kysely";
import {
  ErrorCode,
  EventResult,
  EventType,
  type OmahaRequest,
  type OmahaResponse,
  type RequestApp,
  type ResponseApp,
  type ResponseUpdateCheck,
} from "../omaha/index.ts";
import { logActivity } from "./activity.ts";
import { type ChannelTarget, ConfigCache, type GroupRef } from "./config-cache.ts";
import type { DbKind } from "./db/connect.ts";
import type { HotQueries, InstanceSnapshot } from "./db/hot-queries.ts";
import type {
  Database,
  GroupTable,
  InstanceTable,
  PackageDeltaTable,
  PackageTable,
} from "./db/schema.ts";
import { IN_PROGRESS, InstanceStatus } from "./instance-status.ts";
import type { Metrics } from "./metrics.ts";
import { type Clock, decideGrant, type GroupPolicy, nextVersion } from "./policy.ts";

export interface OmahaServiceOptions {
  db: Kysely<Database>;
  kind: DbKind;
  hot: HotQueries;
  clock: Clock;
  /** Base URL under which this server serves stored packages, e.g. "http://host:8080". */
  publicUrl: string | (() => string);
  /** Seconds until the next check, sent as PollInterval; omitted when undefined. */
  pollIntervalS?: number;
  metrics?: Metrics;
}

export interface RequestContext {
  ip: string;
}

const OMAHA_EPOCH_MS = Date.UTC(2007, 0, 1);
const MAX_FIELD = 256;

export function groupPolicy(g: GroupTable): GroupPolicy {
  return {
    updatesEnabled: g.updates_enabled === 1,
    safeMode: g.safe_mode === 1,
    maxUpdatesPerPeriod: g.max_updates_per_period,
    periodIntervalS: g.period_interval_s,
    updateTimeoutS: g.update_timeout_s,
    officeHours: g.office_hours === 1,
    timezone: g.timezone,
    officeStartMin: g.office_start_min,
    officeEndMin: g.office_end_min,
    haltedReason: g.halted_reason,
  };
}

export class OmahaService {
  readonly #o: OmahaServiceOptions;
  readonly config: ConfigCache;

  constructor(opts: OmahaServiceOptions) {
    this.#o = opts;
    this.config = new ConfigCache(opts.db);
  }

  async handle(req: OmahaRequest, ctx: RequestContext): Promise<OmahaResponse> {
    const now = this.#o.clock();
    const apps: ResponseApp[] = [];
    for (const app of req.apps) apps.push(await this.#handleApp(app, ctx, now));
    return response(now, apps);
  }

  /**
   * The steady state answered without waiting for anything, when all it needs is in memory
   * (the configuration cache and, on SQLite, the cached host row): one app, no events, a
   * known host on its version. Null otherwise: then `handle` decides (same rules, same answer).
   */
  steadyAnswer(req: OmahaRequest, ctx: RequestContext): OmahaResponse | null {
    const app = req.apps.length === 1 ? req.apps[0]! : undefined;
    const cachedRow = this.#o.hot.cached;
    if (!app || app.events.length > 0 || !cachedRow) return null;
    const machineId = trackableMachineId(app);
    if (machineId === undefined) return null;
    if (this.config.peekAppExists(app.appId) !== true) return null;
    const group = this.config.peekGroup(app.appId, (app.track ?? "").slice(0, MAX_FIELD));
    if (group === undefined) return null;
    const channel = group?.channelId ? this.config.peekChannel(group.channelId) : null;
    if (channel === undefined) return null;
    const prev = cachedRow(app.appId, machineId);
    if (!prev) return null;
    const now = this.#o.clock();
    if (!this.#unchanged(app, ctx, now, group, channel, prev)) return null;
    return response(now, [this.#steadyResponse(app)]);
  }

  async #handleApp(app: RequestApp, ctx: RequestContext, now: number): Promise<ResponseApp> {
    const { db } = this.#o;
    if (!(await this.config.appExists(app.appId)))
      return { appId: app.appId, status: "error-unknownApplication", events: [] };
    const machineId = trackableMachineId(app);
    // Without a machine id or version nothing can be tracked; say so per app, write nothing.
    if (machineId === undefined)
      return { appId: app.appId, status: "error-invalidAppId", events: [] };
    // Cached configuration is loaded before the transaction: on SQLite the transaction holds
    // the only connection.
    const group = await this.config.group(app.appId, (app.track ?? "").slice(0, MAX_FIELD));
    const channel = group?.channelId ? await this.config.channel(group.channelId) : null;
    if (await this.#steadyState(app, machineId, ctx, now, group, channel))
      return this.#steadyResponse(app);
    const res: ResponseApp = { appId: app.appId, status: "ok", events: [] };
    await db.transaction().execute(async (trx) => {
      const instance = await this.#upsertInstance(trx, app, machineId, ctx, now, group);
      for (const ev of app.events) {
        await this.#recordEvent(trx, instance, ev, now);
        res.events.push({ status: "ok" });
      }
      if (app.ping) res.ping = { status: "ok" };
      if (app.updateCheck)
        res.updateCheck = await this.#updateCheck(
          trx,
          instance,
          now,
          group,
          channel,
          app.deltaOkay === true,
        );
    });
    return res;
  }

  /** The answer to a steady-state check: ok, its ping acknowledged, no update. */
  #steadyResponse(app: RequestApp): ResponseApp {
    const res: ResponseApp = { appId: app.appId, status: "ok", events: [] };
    if (app.ping) res.ping = { status: "ok" };
    if (app.updateCheck) res.updateCheck = this.#noupdate();
    return res;
  }

  #noupdate(): ResponseUpdateCheck {
    return { status: "noupdate", urls: [], pollInterval: this.#o.pollIntervalS };
  }

  /**
   * The common case: a known host, nothing about it changed, no events, nothing to offer.
   * Then the only write is its last-check time, which is batched (flushTouches) instead of a
   * transaction per check. Returns false when the full path is needed.
   */
  async #steadyState(
    app: RequestApp,
    machineId: string,
    ctx: RequestContext,
    now: number,
    group: GroupRef | null,
    channel: ChannelTarget | null,
  ): Promise<boolean> {
    if (app.events.length > 0) return false;
    const prev = await this.#o.hot.instance(app.appId, machineId);
    return prev !== undefined && this.#unchanged(app, ctx, now, group, channel, prev);
  }

  /**
   * Whether a check changes nothing about its known host and has nothing to offer it; if so its
   * last-check time is queued (the only write of the steady state).
   */
  #unchanged(
    app: RequestApp,
    ctx: RequestContext,
    now: number,
    group: GroupRef | null,
    channel: ChannelTarget | null,
    prev: Readonly<InstanceSnapshot>,
  ): boolean {
    if (IN_PROGRESS.includes(prev.status)) return false;
    const f = instanceFields(app, ctx, now, group, prev);
    if (
      f.version !== prev.version ||
      f.track !== prev.track ||
      f.group_id !== prev.group_id ||
      f.boot_id !== prev.boot_id ||
      f.ip !== prev.ip ||
      f.alias !== prev.alias ||
      f.oem !== prev.oem ||
      f.oem_version !== prev.oem_version
    ) {
      return false;
    }
    if (app.updateCheck && group && channel && groupMatches(group, prev)) {
      if (nextVersionOf(prev.version, channel) !== null) return false;
    }
    let byMachine = this.#touches.get(app.appId);
    if (!byMachine) {
      byMachine = new Map();
      this.#touches.set(app.appId, byMachine);
    }
    // Keyed by the database's copy of the id: the request's string is a slice of its body.
    byMachine.set(prev.machine_id, Math.max(now, byMachine.get(prev.machine_id) ?? 0));
    return true;
  }

  /** Last-check times to write: app id → machine id → time. */
  #touches = new Map<string, Map<string, number>>();
  #flushing: Promise<void> | null = null;

  /** Hosts whose last-check time is not written yet. */
  get pendingTouches(): number {
    let n = 0;
    for (const byMachine of this.#touches.values()) n += byMachine.size;
    return n;
  }

  get flushing(): boolean {
    return this.#flushing !== null;
  }

  /** Write the batched last-check times (called every TOUCH_FLUSH_MS and on shutdown). */
  flushTouches(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#touches.size === 0) return Promise.resolve();
    const batch = this.#touches;
    this.#touches = new Map();
    this.#flushing = Promise.all(
      [...batch].map(([appId, byMachine]) => {
        // One time per batch (the newest): the batch spans at most one flush interval.
        let at = 0;
        for (const t of byMachine.values()) if (t > at) at = t;
        return this.#o.hot.touch(appId, [...byMachine.keys()], at);
      }),
    )
      .then(() => {})
      .finally(() => {
        this.#flushing = null;
      });
    return this.#flushing;
  }

  async #upsertInstance(
    trx: Transaction<Database>,
    app: RequestApp,
    machineId: string,
    ctx: RequestContext,
    now: number,
    group: GroupRef | null,
  ): Promise<InstanceTable> {
    const prev = await trx
      .selectFrom("instances")
      .selectAll()
      .where("app_id", "=", app.appId)
      .where("machine_id", "=", machineId)
      .executeTakeFirst();
    const fields = instanceFields(app, ctx, now, group, prev);
    const version = fields.version;
    if (!prev) {
      const row: InstanceTable = {
        app_id: app.appId,
        machine_id: machineId,
        ...fields,
        status: InstanceStatus.Undefined,
        version_before_update: null,
        update_version: null,
        update_is_delta: 0,
        update_granted_at: null,
        error_code: null,
        created_at: now,
      };
      await trx.insertInto("instances").values(row).execute();
      return row;
    }
    const next: InstanceTable = { ...prev, ...fields };
    // The host is back on the version it had before a granted update, after a reboot: GRUB
    // fell back to the old slot. That is a failed update even if the host never said so.
    if (
      prev.update_version !== null &&
      IN_PROGRESS.includes(prev.status) &&
      prev.status === InstanceStatus.Installed &&
      version === prev.version_before_update &&
      version !== prev.update_version &&
      fields.boot_id !== prev.boot_id
    ) {
      next.status = InstanceStatus.Error;
      next.error_code = ErrorCode.Rollback;
      await this.#updateFailed(
        trx,
        next,
        now,
        "came back on the old version after the update (rollback)",
      );
    } else if (
      prev.update_version !== null &&
      version === prev.update_version &&
      IN_PROGRESS.includes(prev.status)
    ) {
      next.status = InstanceStatus.Complete;
      await this.#completed(trx, next, now);
    }
    await trx
      .updateTable("instances")
      .set({ ...fields, status: next.status, error_code: next.error_code })
      .where("app_id", "=", app.appId)
      .where("machine_id", "=", machineId)
      .execute();
    return next;
  }

  async #recordEvent(
    trx: Transaction<Database>,
    inst: InstanceTable,
    ev: RequestApp["events"][number],
    now: number,
  ): Promise<void> {
    await trx
      .insertInto("events")
      .values({
        app_id: inst.app_id,
        machine_id: inst.machine_id,
        group_id: inst.group_id,
        type: ev.type,
        result: ev.result,
        error_code: ev.errorCode ?? null,
        version: inst.version,
        previous_version: ev.previousVersion?.slice(0, MAX_FIELD) ?? null,
        created_at: now,
      })
      .execute();
    const before = inst.status;
    let status = inst.status;
    if (ev.result === EventResult.Error) {
      status = InstanceStatus.Error;
      inst.error_code = ev.errorCode ?? ErrorCode.Error;
    } else if (ev.type === EventType.DownloadStarted) status = InstanceStatus.Downloading;
    else if (ev.type === EventType.DownloadFinished) status = InstanceStatus.Downloaded;
    else if (ev.type === EventType.UpdateComplete && ev.result === EventResult.Success)
      status = InstanceStatus.Installed;
    else if (ev.type === EventType.UpdateComplete && ev.result === EventResult.SuccessReboot) {
      // Rebooted into "it": complete only when "it" is the granted version (or nothing was granted).
      if (inst.update_version === null || inst.version === inst.update_version)
        status = InstanceStatus.Complete;
      else {
        status = InstanceStatus.Error;
        inst.error_code = ErrorCode.Rollback;
      }
    }
    if (status === before && status !== InstanceStatus.Error) return;
    inst.status = status;
    if (status === InstanceStatus.Error && before !== InstanceStatus.Error) {
      const why =
        inst.error_code === ErrorCode.Rollback
          ? "rolled back to the previous version"
          : `reported error code ${inst.error_code}`;
      await this.#updateFailed(trx, inst, now, why);
    } else if (status === InstanceStatus.Complete && before !== InstanceStatus.Complete) {
      await this.#completed(trx, inst, now);
    }
    await trx
      .updateTable("instances")
      .set({ status: inst.status, error_code: inst.error_code })
      .where("app_id", "=", inst.app_id)
      .where("machine_id", "=", inst.machine_id)
      .execute();
  }

  async #completed(trx: Transaction<Database>, inst: InstanceTable, now: number): Promise<void> {
    this.#o.metrics?.updateOutcome("complete");
    if (!inst.group_id || !inst.update_version) return;
    const others = await trx
      .selectFrom("instances")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("group_id", "=", inst.group_id)
      .where("version", "=", inst.update_version)
      .where("status", "=", InstanceStatus.Complete)
      .executeTakeFirstOrThrow();
    if (Number(others.n) === 0) {
      await logActivity(trx, now, {
        severity: "success",
        class: "rollout-first-complete",
        appId: inst.app_id,
        groupId: inst.group_id,
        version: inst.update_version,
        message: `first host (${inst.machine_id}) completed ${inst.update_version}`,
      });
    }
  }

  /** A failed update: logged; in safe mode the group halts at once. */
  async #updateFailed(
    trx: Transaction<Database>,
    inst: InstanceTable,
    now: number,
    why: string,
  ): Promise<void> {
    this.#o.metrics?.updateOutcome(inst.error_code === ErrorCode.Rollback ? "rollback" : "error");
    await logActivity(trx, now, {
      severity: "error",
      class: "instance-update-failed",
      appId: inst.app_id,
      groupId: inst.group_id,
      version: inst.update_version ?? inst.version,
      message: `host ${inst.machine_id} ${why}`,
    });
    if (!inst.group_id) return;
    await haltIfSafeMode(trx, inst.group_id, now, `host ${inst.machine_id} ${why}`);
  }

  async #updateCheck(
    trx: Transaction<Database>,
    inst: InstanceTable,
    now: number,
    groupRef: GroupRef | null,
    channel: ChannelTarget | null,
    deltaOkay: boolean,
  ): Promise<ResponseUpdateCheck> {
    const noupdate = (): ResponseUpdateCheck => ({
      status: "noupdate",
      urls: [],
      pollInterval: this.#o.pollIntervalS,
    });
    if (!inst.group_id) return noupdate();
    if (!groupRef?.channelId || groupRef.id !== inst.group_id) return noupdate();
    if (!channel?.targetVersion) return noupdate();

    // A host already holding a grant gets the same answer again (idempotent, not recounted).
    if (inst.update_version !== null && IN_PROGRESS.includes(inst.status)) {
      const pkg = await this.#package(trx, inst.app_id, inst.update_version);
      return pkg
        ? this.#offer(pkg, await this.#delta(trx, pkg, inst.version, deltaOkay))
        : noupdate();
    }
    const target = nextVersion(inst.version, channel);
    if (target === null) return noupdate();
    // Failed once on this version: do not hand it out again until an operator resets the host.
    // Except a host that failed with a delta and now asks without delta_okay: it gets one try
    // with the full payload (update_engine falls back to full after a failed delta).
    if (inst.status === InstanceStatus.Error && inst.update_version === target) {
      if (deltaOkay || inst.update_is_delta !== 1) return noupdate();
    }

    // The policy is read fresh; on PostgreSQL the row lock serialises grants per group across
    // connections and replicas (SQLite runs one transaction at a time anyway).
    let groupQuery = trx.selectFrom("groups").selectAll().where("id", "=", groupRef.id);
    if (this.#o.kind === "postgres") groupQuery = groupQuery.forUpdate();
    const group = await groupQuery.executeTakeFirst();
    if (!group) return noupdate();
    const policyGroup = group;
    const policy = groupPolicy(policyGroup);
    if (policy.safeMode || policy.updateTimeoutS > 0) {
      if (await expireTimedOut(trx, policyGroup, now)) {
        // A timeout in safe mode halts the group; re-read the policy.
        policy.haltedReason = (
          await trx
            .selectFrom("groups")
            .select("halted_reason")
            .where("id", "=", group.id)
            .executeTakeFirstOrThrow()
        ).halted_reason;
      }
    }
    const counters = await rolloutCounters(
      trx,
      group.id,
      target,
      now - policy.periodIntervalS * 1000,
    );
    const decision = decideGrant(now, policy, counters);
    if (!decision.grant) {
      await trx
        .updateTable("instances")
        .set({ status: InstanceStatus.OnHold })
        .where("app_id", "=", inst.app_id)
        .where("machine_id", "=", inst.machine_id)
        .where("status", "in", [
          InstanceStatus.Undefined,
          InstanceStatus.Complete,
          InstanceStatus.OnHold,
        ])
        .execute();
      return noupdate();
    }
    const pkg = await this.#package(trx, inst.app_id, target);
    if (!pkg) return noupdate();
    const delta = await this.#delta(trx, pkg, inst.version, deltaOkay);
    await trx
      .updateTable("instances")
      .set({
        status: InstanceStatus.UpdateGranted,
        update_version: target,
        update_is_delta: delta ? 1 : 0,
        version_before_update: inst.version,
        update_granted_at: now,
        error_code: null,
      })
      .where("app_id", "=", inst.app_id)
      .where("machine_id", "=", inst.machine_id)
      .execute();
    this.#o.metrics?.updateOutcome("granted");
    return this.#offer(pkg, delta);
  }

  #package(
    trx: Transaction<Database>,
    appId: string,
    version: string,
  ): Promise<PackageTable | undefined> {
    return trx
      .selectFrom("packages")
      .selectAll()
      .where("app_id", "=", appId)
      .where("version", "=", version)
      .executeTakeFirst();
  }

  /** The delta payload from the host's version, when it takes deltas and one exists. */
  async #delta(
    trx: Transaction<Database>,
    pkg: PackageTable,
    fromVersion: string,
    deltaOkay: boolean,
  ): Promise<PackageDeltaTable | undefined> {
    if (!deltaOkay) return undefined;
    return trx
      .selectFrom("package_deltas")
      .selectAll()
      .where("package_id", "=", pkg.id)
      .where("from_version", "=", fromVersion)
      .executeTakeFirst();
  }

  #offer(pkg: PackageTable, delta?: PackageDeltaTable): ResponseUpdateCheck {
    const pub = typeof this.#o.publicUrl === "function" ? this.#o.publicUrl() : this.#o.publicUrl;
    const own = `${pub.replace(/\/$/, "")}/v1/packages/${pkg.id}/`;
    // A delta uploaded to this server sits next to the package's file; an external one has
    // its own base URL.
    const base = delta ? (delta.base_url ?? own) : (pkg.base_url ?? own);
    const file = delta ?? pkg;
    return {
      status: "ok",
      urls: [base.endsWith("/") ? base : `${base}/`],
      pollInterval: this.#o.pollIntervalS,
      manifest: {
        version: pkg.version,
        packages: [
          {
            name: file.filename,
            hash: file.sha1 || undefined,
            hashSha256: file.sha256,
            size: Number(file.size),
            required: true,
          },
        ],
        actions: [
          {
            event: "postinstall",
            sha256: Buffer.from(file.sha256, "hex").toString("base64"),
            needsAdmin: false,
            isDelta: delta !== undefined,
            disablePayloadBackoff: true,
            // These describe the full payload file only.
            metadataSize: delta ? undefined : (pkg.metadata_size ?? undefined),
            metadataSignatureRsa: delta ? undefined : (pkg.signature ?? undefined),
          },
        ],
      },
    };
  }
}

/** The host's machine id when the app can be tracked (a machine id and a version), else undefined. */
function trackableMachineId(app: RequestApp): string | undefined {
  const machineId = app.machineId ?? "";
  if (machineId === "" || machineId.length > MAX_FIELD || (app.version ?? "") === "")
    return undefined;
  return machineId;
}

function response(now: number, apps: ResponseApp[]): OmahaResponse {
  return {
    protocol: "3.0",
    server: "slipway",
    dayStart: {
      elapsedSeconds: Math.floor((now % 86_400_000) / 1000),
      elapsedDays: Math.floor((now - OMAHA_EPOCH_MS) / 86_400_000),
    },
    apps,
  };
}

/** nextVersion per channel configuration (a new one is loaded on every change) and version. */
const nextByChannel = new WeakMap<ChannelTarget, Map<string, string | null>>();

function nextVersionOf(version: string, channel: ChannelTarget): string | null {
  let byVersion = nextByChannel.get(channel);
  if (!byVersion) {
    byVersion = new Map();
    nextByChannel.set(channel, byVersion);
  }
  let next = byVersion.get(version);
  if (next === undefined) {
    next = nextVersion(version, channel);
    if (byVersion.size < 1000) byVersion.set(version, next);
  }
  return next;
}

function groupMatches(group: GroupRef, inst: { group_id: string | null }): boolean {
  return group.id === inst.group_id;
}

/** What a check says about its host (bounded lengths), as instance columns. */
function instanceFields(
  app: RequestApp,
  ctx: RequestContext,
  now: number,
  group: GroupRef | null,
  prev: InstanceSnapshot | undefined,
) {
  return {
    alias: (app.machineAlias ?? prev?.alias ?? "").slice(0, MAX_FIELD),
    ip: ctx.ip.slice(0, 64),
    oem: (app.oem ?? prev?.oem ?? "").slice(0, MAX_FIELD),
    oem_version: (app.oemVersion ?? prev?.oem_version ?? "").slice(0, MAX_FIELD),
    version: (app.version ?? "").slice(0, MAX_FIELD),
    track: (app.track ?? "").slice(0, MAX_FIELD),
    group_id: group?.id ?? null,
    boot_id: (app.bootId ?? "").slice(0, MAX_FIELD),
    last_check_at: now,
  };
}

async function rolloutCounters(
  trx: Transaction<Database>,
  groupId: string,
  target: string,
  periodStart: number,
) {
  const row = await trx
    .selectFrom("instances")
    .select((eb) => [
      eb.fn
        .sum<number>(eb.case().when("update_granted_at", ">=", periodStart).then(1).else(0).end())
        .as("granted"),
      eb.fn
        .sum<number>(
          eb
            .case()
            .when(eb.and([eb("status", "in", [...IN_PROGRESS]), eb("update_version", "=", target)]))
            .then(1)
            .else(0)
            .end(),
        )
        .as("in_progress"),
      eb.fn
        .sum<number>(
          eb
            .case()
            .when(eb.and([eb("status", "=", InstanceStatus.Complete), eb("version", "=", target)]))
            .then(1)
            .else(0)
            .end(),
        )
        .as("completed"),
    ])
    .where("group_id", "=", groupId)
    .executeTakeFirstOrThrow();
  return {
    grantedInPeriod: Number(row.granted ?? 0),
    inProgress: Number(row.in_progress ?? 0),
    completed: Number(row.completed ?? 0),
  };
}

/** Hosts whose granted update outlived the timeout become failures. Returns how many. */
export async function expireTimedOut(
  db: Kysely<Database>,
  group: GroupTable,
  now: number,
): Promise<number> {
  if (group.update_timeout_s <= 0) return 0;
  const cutoff = now - group.update_timeout_s * 1000;
  const expired = await db
    .updateTable("instances")
    .set({ status: InstanceStatus.Error, error_code: ErrorCode.Error })
    .where("group_id", "=", group.id)
    .where("status", "in", [...IN_PROGRESS])
    .where("update_granted_at", "<", cutoff)
    .returning(["machine_id", "update_version"])
    .execute();
  if (expired.length === 0) return 0;
  const first = expired[0]!;
  await logActivity(db, now, {
    severity: "error",
    class: "instance-update-timeout",
    appId: group.app_id,
    groupId: group.id,
    version: first.update_version ?? "",
    message: `${expired.length} host(s) did not finish within ${group.update_timeout_s}s (first: ${first.machine_id})`,
  });
  await haltIfSafeMode(db, group.id, now, `update timed out on ${first.machine_id}`);
  return expired.length;
}

async function haltIfSafeMode(
  db: Kysely<Database>,
  groupId: string,
  now: number,
  why: string,
): Promise<void> {
  const halted = await db
    .updateTable("groups")
    .set({ halted_reason: why })
    .where("id", "=", groupId)
    .where("safe_mode", "=", 1)
    .where("halted_reason", "is", null)
    .returning(["app_id", "name"])
    .executeTakeFirst();
  if (halted) {
    await logActivity(db, now, {
      severity: "critical",
      class: "rollout-halted",
      appId: halted.app_id,
      groupId,
      message: `safe mode halted the rollout of group ${halted.name}: ${why}`,
    });
  }
}
