/**
 * What the lifecycle scripts ask of a guest and of the server: the agent's status (saved per
 * step as an artifact), the slot attributes as `slipway gpt show` and `cgpt show` see them,
 * the instance and its events on the server, and the FleetLock holders.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestVm } from "../../src/vm/harness/machine.ts";
import type { ScriptContext } from "../../src/vm/harness/runner.ts";
import { APP_ID, GROUP, type LifecycleServer } from "./server.ts";

export interface AgentStatusView {
  state: string;
  currentVersion: string;
  bootedSlot: "A" | "B";
  newVersion?: string;
  lastError?: string;
  lastCheckResult?: string;
  failedVersions: string[];
  strategy: string;
  history: { from: string; event: string; to: string; detail?: string }[];
}

/** `slipway update status` in the guest: text and JSON kept as `status-<step>.txt`. */
export async function agentStatus(
  vm: TestVm,
  ctx: ScriptContext,
  step: string,
): Promise<AgentStatusView> {
  const text = await vm.run("slipway update status", { timeoutMs: 60_000 });
  const json = await vm.run("slipway update status --json", { timeoutMs: 60_000 });
  writeFileSync(join(ctx.outDir, `status-${step}.txt`), `${text.stdout}\n---\n${json.stdout}`);
  ctx.log(`[${step}] slipway update status:\n${text.stdout.trim()}`);
  return JSON.parse(json.stdout) as AgentStatusView;
}

/** Poll the agent's status until `ok` (ssh or agent failures while it restarts are retried). */
export async function waitForStatus(
  vm: TestVm,
  ok: (s: AgentStatusView) => boolean,
  timeoutMs: number,
  what: string,
  /** Give up early (returns undefined), e.g. once the guest has rebooted. */
  stopIf?: () => boolean,
): Promise<AgentStatusView> {
  const deadline = Date.now() + timeoutMs;
  let last: AgentStatusView | undefined;
  let lastErr = "";
  while (Date.now() < deadline) {
    if (stopIf?.()) throw new Error(`${what}: stopped waiting`);
    const r = await vm.run("slipway update status --json", { check: false, timeoutMs: 30_000 });
    if (r.code === 0) {
      try {
        last = JSON.parse(r.stdout) as AgentStatusView;
        if (ok(last)) return last;
      } catch {
        lastErr = r.stdout.slice(0, 200);
      }
    } else lastErr = (r.stderr || r.stdout).trim().slice(-200);
    await sleep(3_000);
  }
  throw new Error(
    `${what}: not reached in ${timeoutMs / 1000} s; last status ${last ? `${last.state} on ${last.currentVersion} (${last.lastError ?? last.lastCheckResult ?? ""})` : lastErr}`,
  );
}

export interface SlotAttrs {
  priority: number;
  tries: number;
  successful: number;
}

/** USR-A/USR-B attributes from `slipway gpt show` and from `cgpt show`; asserts they agree. */
export async function slotAttributes(
  vm: TestVm,
  ctx: ScriptContext,
  step: string,
): Promise<Record<"A" | "B", SlotAttrs>> {
  const shown = await vm.run("slipway gpt show --json /dev/vda");
  const table = JSON.parse(shown.stdout) as {
    partitions: ({ number: number; label: string } & SlotAttrs)[];
  };
  const out = {} as Record<"A" | "B", SlotAttrs>;
  const lines: string[] = [];
  for (const slot of ["A", "B"] as const) {
    const p = table.partitions.find((x) => x.label === `USR-${slot}`);
    assert.ok(p, `slipway gpt show lists no USR-${slot}`);
    const c = await vm.run(
      `cgpt show -i ${p.number} -P /dev/vda; cgpt show -i ${p.number} -T /dev/vda; cgpt show -i ${p.number} -S /dev/vda`,
    );
    const [priority, tries, successful] = c.stdout.trim().split(/\s+/).map(Number);
    const ours = { priority: p.priority, tries: p.tries, successful: p.successful };
    const theirs = { priority: priority!, tries: tries!, successful: successful! };
    lines.push(`USR-${slot}: slipway ${JSON.stringify(ours)} cgpt ${JSON.stringify(theirs)}`);
    assert.deepEqual(
      ours,
      theirs,
      `[${step}] slipway gpt show and cgpt show differ on USR-${slot}`,
    );
    out[slot] = ours;
  }
  const cgpt = await vm.run("cgpt show /dev/vda", { check: false });
  writeFileSync(
    join(ctx.outDir, `gpt-${step}.txt`),
    `${lines.join("\n")}\n\n$ cgpt show /dev/vda\n${cgpt.stdout}\n\n$ slipway gpt show --json /dev/vda\n${shown.stdout}`,
  );
  ctx.log(`[${step}] slots: ${lines.join("; ")}`);
  return out;
}

export interface InstanceView {
  machineId: string;
  version: string;
  status: string;
  updateVersion: string | null;
  errorCode: number | null;
  events: {
    type: number;
    result: number;
    errorCode: number | null;
    version: string | null;
    previousVersion: string | null;
  }[];
}

export async function instance(server: LifecycleServer, machineId: string): Promise<InstanceView> {
  const r = await server.api<InstanceView>(
    "GET",
    `/api/apps/${encodeURIComponent(APP_ID)}/instances/${machineId}`,
  );
  assert.equal(
    r.status,
    200,
    `the server does not know host ${machineId}: ${JSON.stringify(r.body)}`,
  );
  return r.body;
}

/** The instance's events oldest first as "type/result[:code]". */
export function eventList(i: InstanceView): string[] {
  return [...i.events]
    .reverse()
    .map((e) => `${e.type}/${e.result}${e.errorCode ? `:${e.errorCode}` : ""}`);
}

export async function waitForInstance(
  server: LifecycleServer,
  machineId: string,
  ok: (i: InstanceView) => boolean,
  timeoutMs: number,
  what: string,
): Promise<InstanceView> {
  const deadline = Date.now() + timeoutMs;
  let last: InstanceView | undefined;
  while (Date.now() < deadline) {
    const r = await server.api<InstanceView>(
      "GET",
      `/api/apps/${encodeURIComponent(APP_ID)}/instances/${machineId}`,
    );
    if (r.status === 200) {
      last = r.body;
      if (ok(last)) return last;
    }
    await sleep(2_000);
  }
  throw new Error(
    `${what}: not seen on the server in ${timeoutMs / 1000} s; last ${last ? `${last.status} on ${last.version}, events ${eventList(last).join(" ")}` : "unknown host"}`,
  );
}

export interface GroupView {
  policy: { updatesEnabled: boolean; safeMode: boolean };
  haltedReason: string | null;
}

export async function group(server: LifecycleServer): Promise<GroupView> {
  const r = await server.api<GroupView>(
    "GET",
    `/api/apps/${encodeURIComponent(APP_ID)}/groups/${GROUP}`,
  );
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

export async function lockHolders(server: LifecycleServer, lockGroup = GROUP): Promise<string[]> {
  const r = await server.api<{ name: string; holders: { id: string }[] }[]>(
    "GET",
    "/api/fleetlock",
  );
  return r.body.find((g) => g.name === lockGroup)?.holders.map((h) => h.id) ?? [];
}

export interface LockLogEntry {
  seq: number;
  id: string;
  action: "acquired" | "released" | "freed";
  at: number;
}

/** The server's FleetLock log for the group: every take and release, in commit order. */
export async function lockLog(server: LifecycleServer, lockGroup = GROUP): Promise<LockLogEntry[]> {
  const r = await server.api<LockLogEntry[]>(
    "GET",
    `/api/fleetlock/${encodeURIComponent(lockGroup)}/log`,
  );
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
