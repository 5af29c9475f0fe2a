import type { ScenarioSetup, SetupContext } from "../../../src/vm/harness/runner.ts";
import { lifecycleSetup } from "../../lifecycle/setup.ts";

/** No safe mode: both hosts may update at once; only the reboot lock orders them. */
export function setup(ctx: SetupContext): Promise<ScenarioSetup> {
  return lifecycleSetup(ctx, ["1.0.0", "2.0.0"], {
    safeMode: false,
    maxUpdatesPerPeriod: 100,
    periodIntervalS: 3600,
  });
}
