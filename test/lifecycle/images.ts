/**
 * The lifecycle scenarios' images: the example built by the real pipeline (`slipway build`,
 * cached like every test build) in four versions that order as semver.
 *
 *   1.0.0        the example + ssh for the harness + cgpt (the guest compares `cgpt show`
 *                with `slipway gpt show`), signed-payload key of the tests
 *   2.0.0        + chrony (a package that creates a system user and ships /etc defaults),
 *                one file in /usr changed
 *   3.0.0        2.0.0 + a vendor health check (/usr/lib/slipway/health.d) that fails
 *   3.1.0-panic  2.0.0 with a broken /usr/lib/systemd/systemd: init dies, the kernel panics,
 *                `panic=10` reboots, GRUB finds the slot's tries used up and falls back
 *
 * The keys in test/lifecycle/keys are test keys, committed on purpose.
 */
import { copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  appendToList,
  type ExampleBuild,
  editConfig,
  overlayDir,
  putFile,
} from "../build/fixture.ts";
import { e2eBuild } from "../e2e/image.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
export const SIGNING_KEY = join(HERE, "keys/test-signing.key");
export const SIGNING_PUB = join(HERE, "keys/test-signing.pem");

export type LifecycleVersion = "1.0.0" | "2.0.0" | "3.0.0" | "3.1.0";

/** The one /usr file that changes between 1.0.0 and 2.0.0. */
export const CHANGED_FILE = "/usr/lib/slipway-example/README";

const FAILING_CHECK = `#!/bin/sh
# Shipped by the lifecycle test's 3.0.0 image: this version must never be marked good.
echo "lifecycle 3.0.0: deliberately unhealthy" >&2
exit 1
`;

const BROKEN_INIT = `#!/bin/sh
# Shipped by the lifecycle test's 3.1.0 image: init exits, so the kernel panics.
echo "lifecycle 3.1.0: broken init" >/dev/console
exit 1
`;

function prepareFor(version: LifecycleVersion): (workDir: string) => void {
  return (dir) => {
    editConfig(dir, (doc) => {
      doc.setIn(["version"], { scheme: "semver", value: version });
      appendToList(doc, ["packages"], version === "1.0.0" ? ["cgpt"] : ["cgpt", "chrony"]);
      doc.setIn(["partitions", "usr"], "640M");
      doc.setIn(["prod", "signingKey"], "update-signing.pem");
    });
    copyFileSync(SIGNING_PUB, join(dir, "update-signing.pem"));
    const usr = overlayDir(dir, "/usr");
    putFile(
      usr,
      CHANGED_FILE.slice("/usr/".length),
      `Slipway example image, lifecycle build ${version === "1.0.0" ? "one" : "two or later"}.\n`,
    );
    if (version === "3.0.0")
      putFile(usr, "lib/slipway/health.d/50-lifecycle-fail", FAILING_CHECK, 0o755);
    if (version === "3.1.0") putFile(usr, "lib/systemd/systemd", BROKEN_INIT, 0o755);
  };
}

/** One lifecycle image, built once per change of its inputs (cached under the test cache). */
export async function lifecycleBuild(version: LifecycleVersion): Promise<ExampleBuild> {
  return await e2eBuild(`lifecycle${version.replace(/\./g, "")}`, prepareFor(version));
}
