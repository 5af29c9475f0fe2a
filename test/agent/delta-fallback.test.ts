/**
 * The agent and deltas: a delta that does not fit the active slot makes the
 * next check ask for the full payload (delta_okay=false), and a slot the
 * agent wrote and verified is a delta's source without hashing it again.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { payloadLibraryEngine } from "../../src/agent/payload-engine.ts";
import type { ApplyRequest } from "../../src/agent/payload-port.ts";
import { ErrorCode } from "../../src/omaha/index.ts";
import { createPayload } from "../../src/payload/index.ts";
import { fileEquals, installKey, makeAgent } from "./helpers.ts";
import { makeHost } from "./host-fixture.ts";
import { startOmaha } from "./omaha-fixture.ts";
import { keys, makeRelease } from "./payloads.ts";

const omaha = await startOmaha();
const work = mkdtempSync(join(process.env.SLIPWAY_TMP ?? tmpdir(), "slipway-delta-fallback-"));
after(async () => {
  await omaha.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A delta-only payload from `base` to `image`. */
async function deltaOnly(version: string, base: Buffer, image: Buffer): Promise<Buffer> {
  writeFileSync(join(work, "base.img"), base);
  writeFileSync(join(work, "new.img"), image);
  const output = join(work, `${version}.delta`);
  await createPayload({
    target: join(work, "new.img"),
    sources: [{ path: join(work, "base.img") }],
    full: false,
    keys: [keys.privatePem],
    output,
    version,
  });
  return readFileSync(output);
}

test("a delta from the wrong source: next check says delta_okay=false, the full payload installs; the written slot's hash is the next delta's source hash", async () => {
  const host = makeHost();
  try {
    installKey(host);
    host.writeConf([`SERVER=${omaha.url}/v1/update/`, "REBOOT_STRATEGY=off"]);
    const slotA = readFileSync(host.slotPath("A"));
    const rel = await makeRelease("1.1.0", { base: slotA });
    // Made from some other 1.0 build than the one this host runs.
    const otherBase = randomBytes(slotA.length);
    omaha.offer("1.1.0", await deltaOnly("1.1.0", otherBase, rel.image));
    const requests: ApplyRequest[] = [];
    const engine = payloadLibraryEngine({ journalDir: join(host.root, "var/lib/slipway") });
    const h = makeAgent(host, {
      payload: {
        verify: engine.verify,
        apply: (req) => {
          requests.push(req);
          return engine.apply(req);
        },
      },
    });
    const checksBefore = omaha.deltaOkay.length;
    await h.agent.start({ checkNow: true });
    await h.clock.advance(0);
    await h.agent.idle();
    const failed = omaha.events.at(-1)!;
    assert.deepEqual(
      [failed.type, failed.result, failed.errorCode],
      [3, 0, ErrorCode.DownloadWriteError],
    );
    assert.match(h.agent.status().lastError ?? "", /wrong source version/);
    assert.ok(readFileSync(host.slotPath("A")).equals(slotA), "active slot untouched");
    assert.equal(requests[0]?.sourceSha256, undefined, "slot A was not written by the agent");

    // The server grants one full retry to a host asking without delta_okay.
    omaha.offer("1.1.0", rel.payload);
    await h.clock.advance(Date.parse(h.agent.status().nextCheck!) - h.clock.now());
    await h.agent.idle();
    assert.deepEqual(omaha.deltaOkay.slice(checksBefore), [true, false]);
    assert.equal(h.agent.currentState, "updated-need-reboot");
    assert.ok(fileEquals(host.slotPath("B"), rel.image));

    // B booted; the next delta (from B) gets B's hash as its source hash.
    host.slotVersion.B = "1.1.0";
    assert.equal(host.reboot(), "B");
    const next = makeAgent(host, {
      payload: {
        verify: engine.verify,
        apply: (req) => {
          requests.push(req);
          return engine.apply(req);
        },
      },
    });
    await next.agent.start();
    const rel2 = await makeRelease("1.2.0", { base: rel.image });
    omaha.offer("1.2.0", await deltaOnly("1.2.0", rel.image, rel2.image));
    await next.agent.checkNow();
    await next.agent.idle();
    assert.equal(omaha.deltaOkay.at(-1), true, "an install clears the full-payload request");
    assert.equal(next.agent.currentState, "updated-need-reboot", next.agent.status().lastError);
    assert.equal(
      requests.at(-1)?.sourceSha256,
      createHash("sha256").update(rel.image).digest("hex"),
    );
    assert.ok(fileEquals(host.slotPath("A"), rel2.image));
  } finally {
    host.cleanup();
  }
});
