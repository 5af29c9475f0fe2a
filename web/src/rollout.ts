/** What a group's rollout is doing, from its policy, its channel's version and its host counts. */
import { type Group, IN_PROGRESS, type Rollout } from "./api.ts";

export type RolloutState = "halted" | "paused" | "running" | "complete" | "idle";

export interface RolloutSummary {
  state: RolloutState;
  target: string | null;
  total: number;
  /** Hosts on the target version. */
  done: number;
  inProgress: number;
  errors: number;
  onHold: number;
  percent: number;
}

export function summarize(
  group: Group,
  r: Rollout | undefined,
  target: string | null,
): RolloutSummary {
  const total = Object.values(r?.versions ?? {}).reduce((a, b) => a + b, 0);
  const done = target ? (r?.versions[target] ?? 0) : 0;
  const count = (names: readonly string[]) => names.reduce((a, s) => a + (r?.statuses[s] ?? 0), 0);
  const inProgress = count(IN_PROGRESS);
  let state: RolloutState;
  if (group.haltedReason) state = "halted";
  else if (!group.policy.updatesEnabled) state = "paused";
  else if (!target) state = "idle";
  else if (total > 0 && done === total) state = "complete";
  else state = "running";
  return {
    state,
    target,
    total,
    done,
    inProgress,
    errors: count(["error"]),
    onHold: count(["on-hold"]),
    percent: total === 0 ? 0 : Math.round((100 * done) / total),
  };
}

export const STATE_LABEL: Record<RolloutState, string> = {
  halted: "halted by safe mode",
  paused: "paused",
  running: "rolling out",
  complete: "up to date",
  idle: "no target version",
};
