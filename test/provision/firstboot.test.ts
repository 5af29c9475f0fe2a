import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  FIRSTBOOT_LINUX_ARG,
  FIRSTBOOT_STAMP,
  firstbootGrubLines,
  firstbootStamp,
  qemuIgnitionArgs,
} from "../../src/provision/firstboot.ts";
import { provisioningImageFiles } from "../../src/provision/image.ts";
import {
  GLUE_MODULE_DIR,
  initrdProvisioning,
  partlabelDeviceUnit,
} from "../../src/provision/initrd.ts";
import { ENVIRONMENT_SCRIPT, oemPartitionFiles } from "../../src/provision/oem.ts";
import { placeFiles } from "../../src/provision/placed.ts";
import { ignitionJson, renderConfig } from "../../src/provision/render.ts";
import { unitContentProblem } from "../../src/provision/validate.ts";

const work = mkdtempSync(join(tmpdir(), "slipway-provision-fb-"));
after(() => rmSync(work, { recursive: true, force: true }));
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

test("grub.cfg lines and the stamp are valid GRUB script", {
  skip: !has("grub-script-check"),
}, () => {
  const cfg = [
    ...firstbootGrubLines(),
    "menuentry x {",
    `  linux /vmlinuz ro ${FIRSTBOOT_LINUX_ARG}`,
    "}",
  ];
  for (const text of [cfg.join("\n"), firstbootStamp("qemu")]) {
    const f = join(work, "check.cfg");
    writeFileSync(f, text);
    const r = spawnSync("grub-script-check", [f], { encoding: "utf8" });
    assert.equal(r.status, 0, `${text}\n${r.stdout}${r.stderr}`);
  }
  assert.match(firstbootStamp("qemu"), /"ignition\.firstboot ignition\.platform\.id=qemu"/);
  assert.ok(firstbootGrubLines().join("\n").includes(FIRSTBOOT_STAMP));
  assert.throws(() => firstbootStamp("nowhere" as "qemu"), /unknown platform/);
  assert.deepEqual(qemuIgnitionArgs("/var/tmp/a,b.ign"), [
    "-fw_cfg",
    "name=opt/com.coreos/config,file=/var/tmp/a,,b.ign",
  ]);
});

test("the dracut glue module is well-formed: shell syntax, units, device names", () => {
  const p = initrdProvisioning();
  assert.deepEqual(p.dracutModules, ["systemd-networkd", "ignition", "slipway-ignition"]);
  assert.ok(p.packages.includes("dracut-network") && p.packages.includes("curl"));
  const offline = initrdProvisioning({ network: false });
  assert.deepEqual(offline.dracutModules, ["slipway-ignition-offline", "slipway-ignition"]);
  assert.deepEqual(offline.packages, ["ignition"]);
  assert.ok(p.packages.includes("ignition") && p.drivers.includes("qemu_fw_cfg"));
  if (has("systemd-escape")) {
    const escaped = spawnSync(
      "systemd-escape",
      ["--path", "--suffix=device", "/dev/disk/by-partlabel/EFI-SYSTEM"],
      {
        encoding: "utf8",
      },
    ).stdout.trim();
    assert.equal(partlabelDeviceUnit("EFI-SYSTEM"), escaped);
  }
  placeFiles(work, p.files);
  for (const f of p.files) {
    const full = join(work, f.path);
    assert.equal(statSync(full).mode & 0o777, f.mode, f.path);
    if (f.path.endsWith(".sh")) {
      const r = spawnSync("bash", ["-n", full], { encoding: "utf8" });
      assert.equal(r.status, 0, `${f.path}: ${r.stderr}`);
    }
    if (f.path.endsWith(".service")) {
      assert.equal(unitContentProblem(f.contents), undefined, f.path);
      assert.match(f.contents, /ConditionPathExists=\/etc\/initrd-release/);
    }
  }
  assert.ok(existsSync(join(work, GLUE_MODULE_DIR, "module-setup.sh")));
});

test("OEM partition files and the /etc/environment writer", () => {
  const oem = oemPartitionFiles({
    platform: "qemu",
    version: "1.2.3",
    config: '{"ignition":{"version":"3.3.0"}}',
  });
  assert.deepEqual(
    oem.map((f) => f.path),
    ["oem-release", "config.ign"],
  );
  assert.match(oem[0]!.contents, /^ID=qemu$/m);

  const tree = join(work, "tree");
  placeFiles(tree, provisioningImageFiles());
  assert.match(
    readFileSync(join(tree, "etc/ssh/sshd_config.d/50-slipway-ignition.conf"), "utf8"),
    /^AuthorizedKeysFile .*\.ssh\/authorized_keys\.d\/ignition$/m,
  );
  const wants = join(
    tree,
    "usr/lib/systemd/system/multi-user.target.wants/slipway-environment.service",
  );
  assert.equal(readlinkSync(wants), "../slipway-environment.service");

  // Run the script with a stand-in `ip` that reports the QEMU user-network address.
  const bin = join(work, "bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, "ip"),
    "#!/bin/sh\necho '2: ens3    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic ens3'\n",
    { mode: 0o755 },
  );
  const envFile = join(work, "environment");
  writeFileSync(envFile, "PATH=/usr/bin\nCOREOS_PUBLIC_IPV4=1.1.1.1\n");
  const r = spawnSync("sh", [join(tree, ENVIRONMENT_SCRIPT)], {
    encoding: "utf8",
    env: { PATH: `${bin}:/usr/bin:/bin`, SLIPWAY_ENVIRONMENT_FILE: envFile },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    readFileSync(envFile, "utf8"),
    "PATH=/usr/bin\nCOREOS_PUBLIC_IPV4=10.0.2.15\nCOREOS_PRIVATE_IPV4=10.0.2.15\nSLIPWAY_PUBLIC_IPV4=10.0.2.15\nSLIPWAY_PRIVATE_IPV4=10.0.2.15\n",
  );
});

const IGNITION = "/usr/lib/dracut/modules.d/30ignition/ignition";
const canRunIgnition =
  process.getuid?.() === 0 && existsSync(IGNITION) && has("unshare") && has("useradd");

test("real Ignition (Debian 2.14) applies a rendered config to a root tree with our SELinux glue", {
  skip: !canRunIgnition,
}, () => {
  const fixtures = new URL("./fixtures/", import.meta.url).pathname;
  const r = renderConfig(
    readFileSync(join(fixtures, "basic.yaml"), "utf8"),
    join(fixtures, "basic.yaml"),
  );
  const ign = join(work, "config.ign");
  writeFileSync(ign, ignitionJson(r.config!));
  // Ignition creates ~/.ssh as the user, who must be able to walk down to the tree.
  chmodSync(work, 0o755);
  const root = join(work, "sysroot");
  mkdirSync(join(root, "etc"), { recursive: true });
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\nsudo:x:27:\nusers:x:100:\n");
  writeFileSync(join(root, "etc/shadow"), "root:*:19000:0:99999:7:::\n", { mode: 0o640 });
  writeFileSync(join(root, "etc/gshadow"), "root:*::\nsudo:*::\nusers:*::\n", { mode: 0o640 });
  // What the glue module does in the initrd: stub setfiles, selinux config when missing.
  const glue = join(work, "glue");
  placeFiles(glue, initrdProvisioning().files);
  const stubDir = join(work, "stub");
  mkdirSync(stubDir, { recursive: true });
  writeFileSync(
    join(stubDir, "setfiles"),
    readFileSync(join(glue, GLUE_MODULE_DIR, "setfiles-noop.sh")),
    {
      mode: 0o755,
    },
  );
  mkdirSync(join(root, "etc/selinux"));
  writeFileSync(join(root, "etc/selinux/config"), "SELINUX=disabled\nSELINUXTYPE=default\n");

  // Private /run (Ignition keeps its state in /run/ignition*), nothing leaks to the host.
  const script = [
    "set -e",
    "mount -t tmpfs tmpfs /run",
    `export PATH=${stubDir}:$PATH IGNITION_CONFIG_FILE=${ign}`,
    `${IGNITION} --root=${root} --platform=file --stage=fetch-offline`,
    `${IGNITION} --root=${root} --platform=file --stage=files --log-to-stdout`,
  ].join("\n");
  const run = spawnSync("unshare", ["-m", "sh", "-c", script], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(run.status, 0, `${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`);

  const file = join(root, "etc/secret.conf");
  assert.equal(readFileSync(file, "utf8"), "token=abc def\n");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.match(readFileSync(join(root, "etc/passwd"), "utf8"), /^core:x:\d+:/m);
  assert.match(readFileSync(join(root, "etc/group"), "utf8"), /^sudo:x:27:core$/m);
  assert.equal(
    readFileSync(join(root, "home/core/.ssh/authorized_keys.d/ignition"), "utf8").trim(),
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx8 user@example",
  );
  assert.match(readFileSync(join(root, "etc/systemd/system/hello.service"), "utf8"), /ExecStart=/);
  assert.equal(
    readFileSync(join(root, "etc/systemd/system-preset/20-ignition.preset"), "utf8").trim(),
    "enable hello.service",
  );
  assert.match(
    readFileSync(join(root, "etc/slipway/update.conf"), "utf8"),
    /^REBOOT_STRATEGY="etcd-lock"$/m,
  );
});
