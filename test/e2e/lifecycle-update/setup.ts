import type { ScenarioSetup, SetupContext } from "../../../src/vm/harness/runner.ts";
import { lifecycleSetup } from "../../lifecycle/setup.ts";

/** Safe mode on (one host at a time until one completes; a failure halts the group). */
export function setup(ctx: SetupContext): Promise<ScenarioSetup> {
  return lifecycleSetup(ctx, ["1.0.0", "2.0.0", "3.0.0", "3.1.0"], {
    safeMode: true,
    maxUpdatesPerPeriod: 100,
    periodIntervalS: 3600,
  });
}
