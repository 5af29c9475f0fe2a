/**
 * The dashboard's view of the lifecycle group (headless Debian Chromium through the web tests'
 * helper): logs in with the admin token, opens the app and waits for the `stable` group card
 * in the state the rollout is in; the screenshot goes into the scenario's output directory.
 */
import { join } from "node:path";
import { ensureDashboardBuilt, launchChromium } from "../web/harness.ts";
import { APP_ID, GROUP, type LifecycleServer } from "./server.ts";

export async function dashboardShot(
  server: LifecycleServer,
  outDir: string,
  name: string,
  state: "halted" | "complete" | "running",
): Promise<string> {
  await ensureDashboardBuilt();
  const browser = await launchChromium();
  try {
    const page = await browser.ctx.newPage();
    await page.goto(server.url);
    await page.fill('input[name="token"]', server.token);
    await page.click('button[type="submit"]');
    await page.getByRole("heading", { name: "Applications" }).waitFor();
    await page.goto(`${server.url}/apps/${encodeURIComponent(APP_ID)}`);
    const card = page.getByTestId(`group-${GROUP}`);
    await card.locator(`[data-state="${state}"]`).waitFor({ timeout: 30_000 });
    const file = join(outDir, `dashboard-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  } finally {
    await browser.close();
  }
}
