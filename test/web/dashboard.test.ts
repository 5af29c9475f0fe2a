/**
 * The dashboard in headless Chromium against a real `slipway serve`: log in, watch a simulated
 * rollout progress, pause and resume a group from the UI, see a safe-mode halt, read a host's
 * history, and check that a viewer can look but not change anything.
 */
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { Fleet } from "../../src/server/fleet-sim.ts";
import {
  ARTIFACTS,
  adminApi,
  ensureDashboardBuilt,
  launchChromium,
  type Serve,
  startServe,
} from "./harness.ts";

const APP = "e2e-os";
const HOSTS = 6;

describe("dashboard", { timeout: 120_000 }, () => {
  let serve: Serve;
  let browser: { ctx: BrowserContext; close(): Promise<void> };
  let api: ReturnType<typeof adminApi>;
  let page: Page;
  let fleet: Fleet;
  let groupId: string;
  let viewerToken = "";
  const shot = (name: string, p: Page = page) =>
    p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  /** Rounds of the simulated fleet: every host takes one step of update_engine's walk. */
  const rounds = async (n: number, f = fleet) => {
    for (let i = 0; i < n; i++) {
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("a fleet round took over 10 s: the Omaha endpoint hangs")),
          10_000,
        );
      });
      const stats = await Promise.race([f.round(), hung]).finally(() => clearTimeout(timer));
      assert.equal(
        stats.failures,
        0,
        `Omaha requests failed in a fleet round: ${JSON.stringify(stats)}`,
      );
    }
  };

  /** Wait until the page shows what the API says: hosts on the target version. */
  const expectProgress = (done: number, total = HOSTS) =>
    page
      .locator(
        `[data-testid="rollout"] [data-testid="rollout-progress"][data-done="${done}"][data-total="${total}"]`,
      )
      .waitFor({ timeout: 15_000 });
  const rolloutState = () =>
    page
      .locator('[data-testid="rollout"]')
      .page()
      .locator('.title-row [data-testid="rollout-state"]');

  // The steps share one server, fleet and tab: after a failure the rest would only time out.
  let failed = false;
  const step = (name: string, fn: () => Promise<void>) =>
    it(name, async (t) => {
      if (failed) return t.skip("an earlier step failed");
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    });

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    await ensureDashboardBuilt();
    serve = await startServe();
    api = adminApi(serve.url, serve.adminToken);
    browser = await launchChromium();
    page = await browser.ctx.newPage();

    // An application with a stored payload, a channel on it and two groups.
    assert.equal((await api("POST", "/api/apps", { id: APP, name: "E2E OS" })).status, 201);
    const up = await fetch(`${serve.url}/api/apps/${APP}/packages/1.1.0?filename=update.gz`, {
      method: "PUT",
      headers: {
        authorization: `Bearer ${serve.adminToken}`,
        "content-type": "application/octet-stream",
      },
      body: Buffer.alloc(4096, 7),
    });
    assert.equal(up.status, 201, await up.text());
    assert.equal(
      (await api("POST", `/api/apps/${APP}/channels`, { name: "stable", package: "1.1.0" })).status,
      201,
    );
    const policy = {
      safeMode: true,
      maxUpdatesPerPeriod: HOSTS,
      periodIntervalS: 3600,
      updateTimeoutS: 0,
    };
    const prod = await api<{ id: string }>("POST", `/api/apps/${APP}/groups`, {
      name: "prod",
      track: "stable",
      channel: "stable",
      policy,
    });
    assert.equal(prod.status, 201);
    groupId = prod.body.id;
    await api("POST", `/api/apps/${APP}/groups`, {
      name: "canary",
      track: "canary",
      channel: "stable",
      policy,
    });
    fleet = new Fleet({
      endpoint: `${serve.url}/v1/update/`,
      appId: APP,
      track: "stable",
      hosts: HOSTS,
      startVersion: "1.0.0",
      concurrency: 4,
    });
  });

  after(async () => {
    await browser?.close();
    await serve?.stop();
  });

  step("refuses an unknown token and logs in with the admin token", async () => {
    await page.goto(serve.url);
    await page.locator('input[name="token"]').waitFor();
    await shot("00-login");
    await page.fill('input[name="token"]', "slw_not-a-token");
    await page.click('button[type="submit"]');
    await page.getByRole("alert").filter({ hasText: "not known" }).waitFor();
    await page.fill('input[name="token"]', serve.adminToken);
    await page.click('button[type="submit"]');
    await page.getByRole("heading", { name: "Applications" }).waitFor();
    assert.equal(await page.getByTestId("scope").textContent(), "admin");
    assert.match(
      (await page.evaluate(() => sessionStorage.getItem("slipway.session"))) ?? "",
      /"scope":"admin"/,
    );
    await page.getByRole("link", { name: /E2E OS/ }).waitFor();
    await shot("01-apps");
  });

  step("shows a simulated rollout progressing on the group page", async () => {
    await rounds(1); // every host checks in; safe mode grants one
    await page.getByRole("link", { name: /E2E OS/ }).click();
    await page.getByTestId("group-prod").waitFor();
    await page.getByRole("link", { name: "prod" }).click();
    await page.waitForURL(/\/groups\//);
    await expectProgress(0);
    assert.equal(await rolloutState().getAttribute("data-state"), "running");
    await page
      .locator('[data-testid="instances"] tbody tr')
      .nth(HOSTS - 1)
      .waitFor();
    await shot("02-rollout-started");

    await rounds(3); // download started, finished, installed: waiting for its reboot
    await page.getByTestId("rollout-progress").filter({ hasText: "1 updating" }).waitFor();
    await shot("03-first-host-installed");
  });

  step(
    "pauses the group from the UI; the API shows it paused and nothing more is granted",
    async () => {
      await page.getByRole("button", { name: "Pause updates" }).click();
      await page.locator('.title-row [data-state="paused"]').waitFor();
      const g = await api<{ policy: { updatesEnabled: boolean } }>(
        "GET",
        `/api/apps/${APP}/groups/${groupId}`,
      );
      assert.equal(g.body.policy.updatesEnabled, false);
      await rounds(2); // the first host reboots into 1.1.0; the others ask and are held
      const r = await api<{ statuses: Record<string, number> }>(
        "GET",
        `/api/apps/${APP}/groups/${groupId}/rollout`,
      );
      assert.deepEqual(r.body.statuses, { complete: 1, "on-hold": HOSTS - 1 });
      await expectProgress(1);
      await page.getByRole("button", { name: "Resume updates" }).waitFor();
      await page.locator('[data-testid="activity"] [data-class="rollout-paused"]').waitFor();
      await page
        .locator('[data-testid="activity"] [data-class="rollout-first-complete"]')
        .waitFor();
      await shot("04-paused");
    },
  );

  step("resumes from the UI and follows the rollout to the end", async () => {
    await page.getByRole("button", { name: "Resume updates" }).click();
    await page.locator('.title-row [data-state="running"]').waitFor();
    await rounds(2); // the others are granted and start downloading
    await page
      .getByTestId("rollout-progress")
      .filter({ hasText: `${HOSTS - 1} updating` })
      .waitFor();
    await shot("05-resumed-updating");
    await rounds(3);
    await expectProgress(HOSTS);
    await page.locator('.title-row [data-state="complete"]').waitFor();
    // The timeline was derived from host histories: both versions appear in it.
    const bands = page.locator('[data-testid="version-timeline"] path');
    await bands.nth(1).waitFor();
    assert.equal(await bands.count(), 2);
    await shot("06-complete");
  });

  step("filters hosts by status and shows one host's history", async () => {
    const rows = page.locator('[data-testid="instances"] tbody tr');
    await page.selectOption('select[name="status-filter"]', "error");
    await page.getByText("No hosts match.").waitFor();
    await page.selectOption('select[name="status-filter"]', "complete");
    await rows.nth(HOSTS - 1).waitFor();
    await rows.first().getByRole("link").click();
    await page.waitForURL(/\/instances\//);
    const events = page.locator('[data-testid="events"] tbody tr');
    await events.nth(3).waitFor(); // download started, finished, installed, rebooted into it
    assert.match(
      (await page.getByTestId("events").textContent()) ?? "",
      /update complete\s*rebooted into it/,
    );
    await shot("07-host-history");
  });

  step("shows a group halted by safe mode", async () => {
    const canary = new Fleet({
      endpoint: `${serve.url}/v1/update/`,
      appId: APP,
      track: "canary",
      hosts: 2,
      startVersion: "1.0.0",
      rollbackRate: 1,
      idPrefix: "canary",
    });
    await rounds(5, canary);
    await page.goto(`${serve.url}/apps/${APP}`); // a deep link: served by the SPA fallback
    const card = page.getByTestId("group-canary");
    await card.locator('[data-state="halted"]').waitFor({ timeout: 10_000 });
    await page.getByTestId("group-prod").locator('[data-state="complete"]').waitFor();
    await shot("08-groups-tab");
    await card.getByRole("link", { name: "canary" }).click();
    await page.getByTestId("halted").waitFor();
    assert.match((await page.getByTestId("halted").textContent()) ?? "", /rollback/);
    await page.getByRole("button", { name: "Clear halt and resume" }).waitFor();
    await shot("09-halted");
  });

  step(
    "shows reboot locks and tokens; an admin frees a stuck slot and makes a viewer token",
    async () => {
      const take = await fetch(`${serve.url}/v1/pre-reboot`, {
        method: "POST",
        headers: { "fleet-lock-protocol": "true", "content-type": "application/json" },
        body: JSON.stringify({ client_params: { id: "sim-000003", group: "default" } }),
      });
      assert.equal(take.status, 200, await take.text());
      await page.getByRole("link", { name: /Tokens/ }).click();
      const locks = page.getByTestId("fleetlock");
      await locks.getByText("sim-000003").waitFor();
      page.once("dialog", (d) => d.accept());
      await locks.getByRole("button", { name: "Free" }).click();
      await locks.getByText("0 / 1 used").waitFor();
      const after = await api<{ name: string; holders: unknown[] }[]>("GET", "/api/fleetlock");
      assert.deepEqual(after.body.find((g) => g.name === "default")?.holders, []);

      const tokens = page.getByTestId("tokens");
      await tokens.locator('input[name="token-name"]').fill("e2e-viewer");
      await tokens.locator('select[name="token-scope"]').selectOption("viewer");
      await tokens.getByRole("button", { name: "Create token" }).click();
      viewerToken = (
        (await page.getByTestId("new-token").locator("code").textContent()) ?? ""
      ).trim();
      assert.match(viewerToken, /^slw_/);
      await tokens.getByRole("cell", { name: "e2e-viewer" }).waitFor();
      await shot("10-tokens-locks");
    },
  );

  step("lets a viewer look but not change anything", async () => {
    await page.close();
    page = await browser.ctx.newPage(); // a new tab: its own sessionStorage, so logged out
    await page.goto(`${serve.url}/apps/${APP}/groups/${groupId}`);
    await page.fill('input[name="token"]', viewerToken);
    await page.click('button[type="submit"]');
    await page.getByTestId("rollout").waitFor();
    assert.equal(await page.getByTestId("scope").textContent(), "viewer");
    await expectProgress(HOSTS);
    assert.equal(await page.getByRole("button", { name: /Pause|Resume/ }).count(), 0);
    assert.equal(
      await page.locator('[data-testid="group-form"] input[type="number"]').first().isDisabled(),
      true,
    );
    assert.equal(await page.getByRole("button", { name: /Save group/ }).count(), 0);
    await shot("11-viewer-group");

    await page.goto(`${serve.url}/apps/${APP}`);
    await page.getByRole("tab", { name: "channels" }).click();
    const channel = page.getByTestId("channel-stable");
    await channel.waitFor();
    assert.equal(await channel.locator('select[name="package"]').isDisabled(), true);
    assert.equal(await page.getByRole("button", { name: /Save channel|Delete|Create/ }).count(), 0);
    await page.getByRole("tab", { name: "packages" }).click();
    await page.getByText("update.gz").waitFor();
    assert.equal(await page.getByRole("button", { name: /Delete|Upload|Register/ }).count(), 0);
    await shot("12-viewer-packages");
    await page.getByRole("link", { name: /Tokens/ }).click();
    await page.getByTestId("tokens").getByRole("cell", { name: "e2e-viewer" }).waitFor();
    assert.equal(
      await page.getByRole("button", { name: /Revoke|Create token|Free|\+1/ }).count(),
      0,
    );

    // Forcing the API from the page with the viewer's own token is refused.
    const status = await page.evaluate(async (path) => {
      const { token } = JSON.parse(sessionStorage.getItem("slipway.session") ?? "{}");
      const res = await fetch(path, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      return res.status;
    }, `/api/apps/${APP}/groups/${groupId}/pause`);
    assert.equal(status, 403);
    const g = await api<{ policy: { updatesEnabled: boolean } }>(
      "GET",
      `/api/apps/${APP}/groups/${groupId}`,
    );
    assert.equal(g.body.policy.updatesEnabled, true);
  });

  step("edits packages and channels from the UI as an admin", async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await page.fill('input[name="token"]', serve.adminToken);
    await page.click('button[type="submit"]');
    await page.getByTestId("scope").filter({ hasText: "admin" }).waitFor();
    await page.goto(`${serve.url}/apps/${APP}`);
    await page.getByRole("tab", { name: "packages" }).click();
    const form = page.getByTestId("register-package");
    await form.getByLabel("Version", { exact: true }).fill("1.2.0");
    await form.getByLabel("Base URL").fill("https://updates.example.com/1.2.0/");
    await form.getByLabel("File name").fill("update.gz");
    await form.getByLabel("Size (bytes)").fill("1234");
    await form.getByLabel("SHA-256 (hex)").fill("ab".repeat(32));
    await form.getByRole("button", { name: "Register" }).click();
    await page.getByRole("cell", { name: "1.2.0", exact: true }).waitFor();

    await page.getByRole("tab", { name: "channels" }).click();
    const channel = page.getByTestId("channel-stable");
    await channel.locator('select[name="package"]').selectOption("1.2.0");
    const [saved] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "PATCH"),
      channel.getByRole("button", { name: "Save channel" }).click(),
    ]);
    assert.equal(saved.status(), 200);
    const channels = await api<{ name: string; package: string }[]>(
      "GET",
      `/api/apps/${APP}/channels`,
    );
    assert.equal(channels.body.find((c) => c.name === "stable")?.package, "1.2.0");

    await page.getByRole("tab", { name: "groups" }).click();
    await page
      .getByTestId("group-prod")
      .getByTestId("rollout-progress")
      .filter({ hasText: `0 / ${HOSTS} on 1.2.0` })
      .waitFor();
    await shot("13-new-target");
  });

  step("logs the tab out when its token is revoked", async () => {
    await page.getByRole("link", { name: /Tokens/ }).click();
    const row = page.getByTestId("tokens").getByRole("row", { name: /initial-admin/ });
    page.once("dialog", (d) => d.accept());
    await row.getByRole("button", { name: "Revoke" }).click();
    await page.getByRole("alert").filter({ hasText: "no longer accepts this token" }).waitFor();
    await page.locator('input[name="token"]').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("slipway.session")), null);
    assert.equal((await api("GET", "/api/apps")).status, 401);
    await shot("14-revoked");
  });
});
