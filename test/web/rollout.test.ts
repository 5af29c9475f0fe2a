/** The rollout state and progress the dashboard shows for a group. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Group, Rollout } from "../../web/src/api.ts";
import { summarize } from "../../web/src/rollout.ts";

const group = (over: Partial<Group> = {}, policy: Partial<Group["policy"]> = {}): Group => ({
  id: "g",
  appId: "a",
  name: "prod",
  track: "stable",
  channel: "stable",
  haltedReason: null,
  createdAt: 0,
  ...over,
  policy: {
    updatesEnabled: true,
    safeMode: true,
    maxUpdatesPerPeriod: 1,
    periodIntervalS: 3600,
    updateTimeoutS: 3600,
    officeHours: false,
    timezone: "UTC",
    officeStart: "09:00",
    officeEnd: "17:00",
    ...policy,
  },
});

const rollout = (versions: Record<string, number>, statuses: Record<string, number>) =>
  ({ group: group(), versions, statuses }) as Rollout;

describe("rollout summary", () => {
  const midway = rollout(
    { "1.0.0": 3, "1.1.0": 1 },
    { complete: 1, downloading: 1, "update-granted": 1, error: 1 },
  );

  it("counts hosts on the target, updating and failed", () => {
    const s = summarize(group(), midway, "1.1.0");
    assert.deepEqual(
      [s.state, s.done, s.total, s.inProgress, s.errors, s.percent],
      ["running", 1, 4, 2, 1, 25],
    );
  });

  it("puts a safe-mode halt before a pause, and a pause before progress", () => {
    assert.equal(
      summarize(group({ haltedReason: "x" }, { updatesEnabled: false }), midway, "1.1.0").state,
      "halted",
    );
    assert.equal(summarize(group({}, { updatesEnabled: false }), midway, "1.1.0").state, "paused");
  });

  it("is complete when every host runs the target, idle without one", () => {
    const done = rollout({ "1.1.0": 4 }, { complete: 4 });
    assert.equal(summarize(group(), done, "1.1.0").state, "complete");
    assert.equal(summarize(group(), done, "1.1.0").percent, 100);
    assert.equal(summarize(group(), done, null).state, "idle");
    assert.equal(summarize(group(), rollout({}, {}), "1.1.0").percent, 0);
  });
});
