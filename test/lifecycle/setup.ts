/**
 * Scenario setup shared by the lifecycle scenarios: the four images (cached builds), a real
 * `slipway serve` with the app, the `stable` channel on 1.0.0 and the `stable` group, and the
 * guest forward that lets the VMs reach it. The scripts get a `LifecycleSetup` as ctx.setup.
 */
import { join } from "node:path";
import type { ScenarioSetup, SetupContext } from "../../src/vm/harness/runner.ts";
import type { ExampleBuild } from "../build/fixture.ts";
import { ensureDashboardBuilt } from "../web/harness.ts";
import { type LifecycleVersion, lifecycleBuild } from "./images.ts";
import {
  APP_ID,
  createApp,
  createGroup,
  GROUP,
  type LifecycleServer,
  startLifecycleServer,
} from "./server.ts";

export interface LifecycleSetup {
  server: LifecycleServer;
  builds: Record<LifecycleVersion, ExampleBuild>;
}

export async function lifecycleSetup(
  ctx: SetupContext,
  versions: LifecycleVersion[],
  policy: object,
): Promise<ScenarioSetup> {
  const builds = {} as Record<LifecycleVersion, ExampleBuild>;
  for (const v of versions) {
    const t0 = Date.now();
    builds[v] = await lifecycleBuild(v);
    ctx.log(`image ${v}: ${builds[v].buildDir} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  // The dashboard is served from web/dist: build it before the server starts.
  await ensureDashboardBuilt();
  const server = await startLifecycleServer(ctx.outDir, ctx.log);
  try {
    await createApp(server);
    // 1.0.0 is what the hosts boot: registered on the channel as hosted elsewhere (no host is
    // ever offered the version it runs), so the channel and group exist before any update.
    const v1 = builds["1.0.0"].meta;
    const usr = v1.artifacts.usr;
    if (!usr) throw new Error("the 1.0.0 build lists no usr artifact");
    const app = encodeURIComponent(APP_ID);
    const pkg = await server.api("POST", `/api/apps/${app}/packages`, {
      version: v1.version,
      url: "http://10.0.2.100/not-served/",
      filename: "1.0.0.payload",
      size: usr.size,
      sha256: usr.sha256,
    });
    if (pkg.status !== 201) throw new Error(`registering 1.0.0: ${JSON.stringify(pkg.body)}`);
    const ch = await server.api("POST", `/api/apps/${app}/channels`, {
      name: GROUP,
      package: v1.version,
    });
    if (ch.status !== 201) throw new Error(`creating the channel: ${JSON.stringify(ch.body)}`);
    await createGroup(server, policy);
  } catch (e) {
    await server.close();
    throw e;
  }
  const data: LifecycleSetup = { server, builds };
  return {
    disk: join(builds["1.0.0"].buildDir, "disk.raw"),
    guestForwards: [server.guestForward],
    data,
    teardown: () => server.close(),
  };
}
