import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { bundleAgent } from "../../scripts/bundle-agent.ts";
import { bootStateStore } from "../../src/agent/bootstate.ts";
import { openEsp } from "../../src/agent/esp.ts";
import { loadState, saveState } from "../../src/agent/store.ts";
import { markBad, selectBootSlot } from "../../src/boot/slots.ts";
import { installKey } from "./helpers.ts";
import { makeHost } from "./host-fixture.ts";
import { startOmaha } from "./omaha-fixture.ts";
import { makeRelease } from "./payloads.ts";

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
let dir: string;
let bundle: string;
before(async () => {
  dir = mkdtempSync(join(process.env.SLIPWAY_TMP ?? tmpdir(), "slipway-agent-crash-"));
  bundle = join(dir, "slipway-agent.cjs");
  await bundleAgent(bundle);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Undo a staged update like `slipway update reset`: B unbootable, nothing pending. */
async function unstage(root: string): Promise<void> {
  const store = bootStateStore(
    openEsp(join(root, "dev/disk/by-partlabel/EFI-SYSTEM"), root),
    join(root, "disk.img"),
  );
  await store.write(markBad((await store.read()).state, "B"));
  const file = join(root, "var/lib/slipway/agent.json");
  saveState(file, { ...loadState(file), pending: undefined });
}

/** One run of the bundled agent on Node 20; killed with SIGKILL `killAfterMs` into the install. */
function runAgent(root: string, killAfterMs: number | undefined): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(
      "/usr/bin/node",
      [
        bundle,
        "agent",
        "--root",
        root,
        "--disk",
        "disk.img",
        "--system-state",
        "running",
        "--once",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let err = "";
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (killAfterMs !== undefined && /--verified--> finalizing/.test(err)) {
        setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        killAfterMs = undefined;
      }
    });
    child.on("exit", (code, signal) => {
      resolve(
        signal === "SIGKILL"
          ? "killed"
          : `${out.trim()} (exit ${code})${code ? err.slice(-400) : ""}`,
      );
    });
  });
}

test("kill -9 during the slot write, 20 times (Node 20 bundle, real payload engine): active slot intact, retry succeeds", async () => {
  const omaha = await startOmaha();
  const host = makeHost({ slotBytes: 32 * 1024 * 1024 });
  try {
    installKey(host);
    host.writeConf([`SERVER=${omaha.url}/v1/update/`, "REBOOT_STRATEGY=reboot"]);
    const rel = await makeRelease("1.1.0", { size: 32 * 1024 * 1024 });
    omaha.offer("1.1.0", rel.payload);
    const activeBefore = sha(host.slotPath("A"));
    let killed = 0;
    let completed = 0;
    // 20 kills mid-install. A run that finishes before its kill is undone
    // the way `slipway update reset` would, so the next run writes again.
    for (let i = 0; killed < 20 && i < 40; i++) {
      const r = await runAgent(host.root, 10 + Math.random() * 190);
      if (r === "killed") killed++;
      else {
        assert.match(r, /updated-need-reboot/, `run ${i}`);
        completed++;
      }
      assert.equal(sha(host.slotPath("A")), activeBefore, `run ${i}: active slot intact`);
      const bootSlot = selectBootSlot(host.bootState());
      if (bootSlot === "B") {
        // Only a completely written slot may ever become bootable.
        assert.ok(
          readFileSync(host.slotPath("B")).subarray(0, rel.image.length).equals(rel.image),
          `run ${i}`,
        );
        assert.deepEqual(host.readEsp("/slipway/usr-b/vmlinuz"), rel.kernel);
        await unstage(host.root);
      } else {
        // A kill after `pending` was saved but before B became primary leaves it for
        // the next run, which must discard it and stage the update again.
        assert.equal(bootSlot, "A", `run ${i}: GRUB would boot A`);
      }
    }
    assert.equal(killed, 20, `kills mid-install (${completed} runs finished first)`);
    const last = await runAgent(host.root, undefined);
    assert.match(last, /updated-need-reboot/);
    assert.equal(sha(host.slotPath("A")), activeBefore);
    assert.ok(readFileSync(host.slotPath("B")).subarray(0, rel.image.length).equals(rel.image));
    assert.equal(selectBootSlot(host.bootState()), "B");
    host.slotVersion.B = "1.1.0";
    assert.equal(host.reboot(), "B");
  } finally {
    host.cleanup();
    await omaha.stop();
  }
});
