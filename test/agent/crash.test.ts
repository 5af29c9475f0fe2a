import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { selectBootSlot } from "../../src/boot/slots.ts";
import { installKey, release } from "./helpers.ts";
import { makeHost } from "./host-fixture.ts";
import { startOmaha } from "./omaha-fixture.ts";

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

/** Run the agent child; kill -9 it `killAfterMs` after it starts writing the slot (or let it finish). */
function runChild(
  root: string,
  killAfterMs: number | undefined,
): Promise<"killed" | "rebooted" | string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, "agent-child.ts"), root], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (killAfterMs !== undefined && /--verified--> finalizing/.test(err)) {
        killAfterMs = undefined;
        setTimeout(() => child.kill("SIGKILL"), Math.random() * 250);
      }
    });
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve("killed");
      else if (out.includes("REBOOT")) resolve("rebooted");
      else resolve(`exit ${code}: ${err.slice(-500)}`);
    });
  });
}

test("kill -9 during the slot write, 20 times: the active slot stays intact and bootable, the retry succeeds", async () => {
  const omaha = await startOmaha();
  const host = makeHost();
  try {
    installKey(host);
    host.writeConf([`SERVER=${omaha.url}/v1/update/`, "REBOOT_STRATEGY=reboot"]);
    const rel = release("1.1.0", 4 * 1024 * 1024);
    omaha.offer("1.1.0", rel.payload);
    const activeBefore = sha(host.slotPath("A"));
    let killed = 0;
    for (let i = 0; i < 20; i++) {
      const r = await runChild(host.root, 0);
      if (r === "killed") killed++;
      assert.equal(sha(host.slotPath("A")), activeBefore, `run ${i}: active slot intact`);
      const bootSlot = selectBootSlot(host.bootState());
      if (bootSlot === "B") {
        // Only a completely written slot may ever be made bootable.
        assert.ok(
          readFileSync(host.slotPath("B")).subarray(0, rel.image.length).equals(rel.image),
          `run ${i}: B complete`,
        );
        assert.deepEqual(host.readEsp("/slipway/usr-b/vmlinuz"), rel.kernel);
      } else {
        assert.equal(bootSlot, "A", `run ${i}: GRUB would boot A`);
      }
    }
    assert.ok(killed >= 15, `most runs were killed mid-install (${killed}/20)`);
    assert.equal(await runChild(host.root, undefined), "rebooted");
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
