/** The version timeline (server side, shown by the dashboard) and the dashboard's version colours. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hostSteps, versionTimeline } from "../../src/server/timeline.ts";
import { compareVersions, versionColors } from "../../web/src/format.ts";

const ev = (createdAt: number, version: string, previousVersion: string | null = null) => ({
  createdAt,
  version,
  previousVersion,
});

describe("version timeline", () => {
  it("starts a host on the version it had before its first recorded update", () => {
    const steps = hostSteps({
      createdAt: 0,
      lastCheckAt: 50,
      version: "1.1.0",
      events: [ev(40, "1.1.0", "1.0.0"), ev(10, "1.0.0"), ev(20, "1.0.0")],
    });
    assert.deepEqual(steps, [
      { t: 0, version: "1.0.0" },
      { t: 40, version: "1.1.0" },
    ]);
  });

  it("takes a version the host reports without an event at its last check", () => {
    const steps = hostSteps({
      createdAt: 5,
      lastCheckAt: 90,
      version: "2.0.0",
      events: [ev(10, "1.0.0")],
    });
    assert.deepEqual(steps.at(-1), { t: 90, version: "2.0.0" });
  });

  it("counts hosts per version at each point, only once they exist", () => {
    const s = 1000;
    const t = versionTimeline(
      [
        {
          createdAt: 0,
          lastCheckAt: 100 * s,
          version: "1.1.0",
          events: [ev(50 * s, "1.1.0", "1.0.0")],
        },
        { createdAt: 0, lastCheckAt: 100 * s, version: "1.0.0", events: [] },
        { createdAt: 60 * s, lastCheckAt: 100 * s, version: "1.0.0", events: [] },
      ],
      100 * s,
      4,
    );
    assert.deepEqual(t.versions, ["1.0.0", "1.1.0"]);
    assert.deepEqual(
      t.points.map((p) => [p.t / s, p.counts]),
      [
        [0, { "1.0.0": 2 }],
        [25, { "1.0.0": 2 }],
        [50, { "1.0.0": 1, "1.1.0": 1 }],
        [75, { "1.0.0": 2, "1.1.0": 1 }],
        [100, { "1.0.0": 2, "1.1.0": 1 }],
      ],
    );
  });

  it("is empty without hosts", () => {
    assert.deepEqual(versionTimeline([], 100), { versions: [], points: [] });
  });

  it("orders versions numerically and colours each once", () => {
    assert.deepEqual(["1.10.0", "1.9.2", "1.9.10", "2.0"].sort(compareVersions), [
      "1.9.2",
      "1.9.10",
      "1.10.0",
      "2.0",
    ]);
    const c = versionColors(["1.0", "1.1", "1.1"]);
    assert.equal(c.size, 2);
    assert.notEqual(c.get("1.0"), c.get("1.1"));
  });
});
