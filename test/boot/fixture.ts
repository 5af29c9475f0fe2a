/**
 * What the boot tests boot: `slipway build` output of examples/minimal-dev with a report unit
 * added through the config (an /usr overlay and `units.enable`), as a user would add one.
 * The unit prints the boot's facts to ttyS0 and powers off, so a test is one QEMU run that
 * ends by itself. Three builds, each cached per input hash (test/build/fixture.ts) over the
 * shared stage cache:
 *
 *   - A: the dev example, /usr identity "A";
 *   - B: the same with /usr identity "B" (its usr.img, kernel and initrd go into USR-B);
 *   - prod: flavour prod (dm-verity on /usr, no debug access), /usr identity "P".
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { join } from "node:path";
import {
  appendToList,
  customBuild,
  type ExampleBuild,
  editConfig,
  overlayDir,
  putFile,
  TEST_CACHE,
} from "../build/fixture.ts";

export { TEST_CACHE };

export const REPORT_BEGIN = "SLIPWAY-REPORT-BEGIN";
export const REPORT_END = "SLIPWAY-REPORT-END";
const REPORT_UNIT_NAME = "slipway-test-report.service";

/** Printed to ttyS0 once boot has finished, then the machine powers off. */
const REPORT_SCRIPT = `#!/bin/sh
# Kernel messages on ttyS0 would cut into the report's lines.
dmesg -n 1 2>/dev/null || true
state=$(systemctl is-system-running --wait 2>/dev/null)
{
echo "${REPORT_BEGIN}"
echo "report state=$state"
echo "report slot=$(sed -n 's/.*slipway\\.slot=\\([ab]\\).*/\\1/p' /proc/cmdline)"
echo "report usr-id=$(cat /usr/lib/slipway-test/usr-id)"
echo "report usr-mount=$(findmnt -no SOURCE,FSTYPE,OPTIONS /usr | tr ' ' '|')"
echo "report usr-verity=$(cat /sys/block/$(basename $(readlink -f /dev/mapper/usr 2>/dev/null) 2>/dev/null)/dm/uuid 2>/dev/null | cut -d- -f1-2)"
echo "report root-mount=$(findmnt -no SOURCE,FSTYPE /  | tr ' ' '|')"
echo "report root-bytes=$(df -B1 --output=size / | tail -1 | tr -d ' ')"
echo "report disk-bytes=$(lsblk -bdno SIZE /dev/vda | tr -d ' ')"
echo "report root-part-bytes=$(lsblk -bdno SIZE /dev/vda9 | tr -d ' ')"
echo "report repart=$(systemctl show -P ActiveState systemd-repart.service)"
echo "report boot-mount=$(systemctl show -P ActiveState boot.mount)"
systemctl --failed --no-legend --plain | sed 's/^/report failed=/'
echo "${REPORT_END}"
} > /dev/ttyS0 2>&1
systemctl poweroff --no-block
`;

const REPORT_UNIT = `[Unit]
Description=Slipway boot test report
After=multi-user.target

[Service]
Type=exec
ExecStart=/usr/lib/slipway-test/report

[Install]
WantedBy=multi-user.target
`;

/**
 * A fixed Ed25519 public key for the prod build (prod images embed the update-signing key):
 * derived from a constant seed so the build's inputs, and its cache key, never change.
 */
function testSigningKeyPem(): string {
  const pkcs8 = Buffer.concat([
    Buffer.from("302e020100300506032b657004220420", "hex"),
    Buffer.alloc(32, 0x5a),
  ]);
  const priv = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  return createPublicKey(priv).export({ type: "spki", format: "pem" }).toString();
}

/** The report unit and a /usr identity file, added the way a user adds files and units. */
function addReport(workDir: string, usrId: string): void {
  const usr = overlayDir(workDir, "/usr");
  putFile(usr, "lib/slipway-test/usr-id", `${usrId}\n`);
  putFile(usr, "lib/slipway-test/report", REPORT_SCRIPT, 0o755);
  putFile(usr, `lib/systemd/system/${REPORT_UNIT_NAME}`, REPORT_UNIT);
  putFile(overlayDir(workDir, "/etc"), "hostname", "slipway-test\n");
  editConfig(workDir, (doc) => {
    appendToList(doc, ["units", "enable"], [REPORT_UNIT_NAME]);
    // No login prompt on ttyS0: it would interleave with the report.
    appendToList(doc, ["units", "mask"], ["serial-getty@ttyS0.service"]);
  });
}

export interface BootBuilds {
  a: ExampleBuild;
  b: ExampleBuild;
  prod: ExampleBuild;
  /** Seconds it took to get the three (a few when cached). */
  seconds: number;
}

let memo: Promise<BootBuilds> | undefined;

export function bootBuilds(): Promise<BootBuilds> {
  memo ??= (async () => {
    const t0 = Date.now();
    const a = await customBuild("boot-a", (w) => addReport(w, "A"));
    const b = await customBuild("boot-b", (w) => addReport(w, "B"));
    const prod = await customBuild("boot-prod", (w) => {
      addReport(w, "P");
      putFile(w, "update-signing.pem", testSigningKeyPem());
      editConfig(w, (doc) => {
        doc.set("flavour", "prod");
        doc.deleteIn(["dev", "debugPassword"]);
        doc.setIn(["prod", "signingKey"], "update-signing.pem");
      });
    });
    return { a, b, prod, seconds: Math.round((Date.now() - t0) / 1000) };
  })();
  return memo;
}

/** A build's artifact on the build host (path from meta.json). */
export function artifact(b: ExampleBuild, name: string): string {
  const a = b.meta.artifacts[name];
  if (!a) throw new Error(`${b.buildDir}/meta.json: no ${name} artifact`);
  return join(b.buildDir, a.path);
}

/** Facts from a boot's report lines. */
export interface BootReport {
  state: string;
  slot: string;
  usrId: string;
  usrMount: string[];
  /** Start of the dm uuid behind /dev/mapper/usr ("CRYPT-VERITY" for dm-verity). */
  usrVerity: string;
  rootMount: string[];
  rootBytes: number;
  rootPartBytes: number;
  diskBytes: number;
  /** systemd-repart's state: "active" when it ran, "inactive" when skipped (no room to grow). */
  repart: string;
  /** The ESP's automounted /boot: "inactive" unless something used it during boot. */
  bootMount: string;
  failed: string[];
}

export function parseReport(lines: string[]): BootReport {
  const begin = lines.findLastIndex((l) => l.includes(REPORT_BEGIN));
  const end = lines.findLastIndex((l) => l.includes(REPORT_END));
  if (begin < 0 || end < begin) throw new Error("no complete boot report on the console");
  const r: Record<string, string> = {};
  const failed: string[] = [];
  for (const l of lines.slice(begin + 1, end)) {
    // Kernel or getty output may share the line's start.
    const m = /report ([a-z-]+)=(.*)$/.exec(l.trim().replace(/\[\s*\d+\.\d+\] .*$/, ""));
    if (!m) continue;
    if (m[1] === "failed") failed.push(m[2]!);
    else r[m[1]!] = m[2]!;
  }
  return {
    state: r.state ?? "",
    slot: r.slot ?? "",
    usrId: r["usr-id"] ?? "",
    usrMount: (r["usr-mount"] ?? "").split("|"),
    usrVerity: r["usr-verity"] ?? "",
    rootMount: (r["root-mount"] ?? "").split("|"),
    rootBytes: Number(r["root-bytes"] ?? 0),
    rootPartBytes: Number(r["root-part-bytes"] ?? 0),
    diskBytes: Number(r["disk-bytes"] ?? 0),
    repart: r.repart ?? "",
    bootMount: r["boot-mount"] ?? "",
    failed,
  };
}
