import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { generateGrubConfig, slotConfig, slotUsrArgs } from "../../src/boot/grubcfg.ts";
import { InputError } from "../../src/errors.ts";

const opts = {
  rootPartuuid: "11111111-1111-4111-8111-111111111111",
  usrPartuuids: {
    A: "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
    B: "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
  },
  extraArgs: ["quiet"],
};

test("grub.cfg passes grub-script-check", () => {
  const dir = mkdtempSync(join(tmpdir(), "slipway-grubcfg-"));
  try {
    const f = join(dir, "grub.cfg");
    writeFileSync(f, generateGrubConfig(opts));
    execFileSync("grub-script-check", [f]);
    writeFileSync(f, slotConfig({ partuuid: opts.usrPartuuids.B }));
    execFileSync("grub-script-check", [f]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("grub.cfg boots per-slot kernels with the layout's command line", () => {
  const cfg = generateGrubConfig(opts);
  assert.match(cfg, /load_env usr_a_priority usr_a_tries usr_a_successful usr_b_priority/);
  for (const s of ["a", "b"]) {
    assert.match(cfg, new RegExp(`menuentry "Slipway USR-${s.toUpperCase()}" --id usr-${s}`));
    assert.match(
      cfg,
      new RegExp(`linux /slipway/usr-${s}/vmlinuz .*slipway\\.slot=${s} \\$\\{slot_usr_args\\}`),
    );
    assert.match(cfg, new RegExp(`initrd /slipway/usr-${s}/initrd`));
    assert.match(cfg, new RegExp(`source /slipway/usr-${s}/slot.cfg`));
  }
  const linux = cfg.split("\n").find((l) => l.includes("linux /slipway/usr-a/"))!;
  for (const arg of [
    `root=PARTUUID=${opts.rootPartuuid}`,
    "rd.shell=0",
    "rd.emergency=reboot",
    "panic=10",
    "console=ttyS0,115200",
    "console=tty0",
    "quiet",
  ]) {
    assert.ok(linux.includes(` ${arg}`), `missing ${arg}`);
  }
  // Default /usr when slot.cfg is missing: the slot's own partition.
  assert.match(
    cfg,
    new RegExp(`mount.usr=PARTUUID=${opts.usrPartuuids.B} mount.usrfstype=erofs mount.usrflags=ro`),
  );
});

test("fallback names the other slot's entry by number (upstream GRUB has no ids there)", () => {
  const cfg = generateGrubConfig(opts);
  const entries = [...cfg.matchAll(/^menuentry "([^"]+)"/gm)].map((m) => m[1]);
  assert.deepEqual(entries, ["Slipway USR-A", "Slipway USR-B"]);
  assert.match(cfg, /if \[ "\$\{slot\}" != a [^\n]*\n {2}if [^\n]*then set fallback=0; fi/);
  assert.match(cfg, /if \[ "\$\{slot\}" != b [^\n]*\n {2}if [^\n]*then set fallback=1; fi/);
});

test("tries are counted down 15→0 and saved before the kernel loads", () => {
  const cfg = generateGrubConfig(opts);
  for (let t = 1; t <= 15; t++) {
    assert.ok(cfg.includes(`[ "\${usr_b_tries}" = ${t} ]; then set usr_b_tries=${t - 1}`));
  }
  const save = cfg.indexOf("save_env usr_b_tries");
  assert.ok(save > 0 && save < cfg.indexOf("menuentry"));
  assert.ok(!cfg.includes("usr_a_tries=-1"));
});

test("verity slot args open /usr through /dev/mapper/usr", () => {
  const args = slotUsrArgs({
    partuuid: opts.usrPartuuids.A,
    verity: { rootHash: "ab".repeat(32), hashOffset: 4096n * 10n },
  });
  assert.ok(args.includes(`usrhash=${"ab".repeat(32)}`));
  assert.ok(args.includes("mount.usr=/dev/mapper/usr"));
  assert.ok(args.some((a) => a.startsWith("systemd.verity_usr_options=hash-offset=40960")));
  assert.throws(() =>
    slotUsrArgs({ partuuid: opts.usrPartuuids.A, verity: { rootHash: "xyz", hashOffset: 0 } }),
  );
});

test("prelude lines and argument variables (first-boot stamp) are wired in", () => {
  const cfg = generateGrubConfig({
    ...opts,
    prelude: [
      'set slipway_firstboot_args=""',
      "if [ -f /slipway/firstboot.cfg ]; then source /slipway/firstboot.cfg; fi",
    ],
    argVariables: [`\${slipway_firstboot_args}`],
  });
  assert.ok(cfg.indexOf("source /slipway/firstboot.cfg") < cfg.indexOf("load_env"));
  const linux = cfg.split("\n").filter((l) => l.includes("linux /slipway/"));
  assert.equal(linux.length, 2);
  for (const l of linux) assert.ok(l.includes(` \${slipway_firstboot_args} `));
  const dir = mkdtempSync(join(tmpdir(), "slipway-grubcfg-"));
  try {
    writeFileSync(join(dir, "grub.cfg"), cfg);
    execFileSync("grub-script-check", [join(dir, "grub.cfg")]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => generateGrubConfig({ ...opts, argVariables: ["$(reboot)"] }), InputError);
});

test("bad inputs are refused", () => {
  assert.throws(() => generateGrubConfig({ ...opts, rootPartuuid: "nope" }), InputError);
  assert.throws(() => generateGrubConfig({ ...opts, extraArgs: ["a b"] }), /space/);
  assert.throws(() => generateGrubConfig({ ...opts, extraArgs: ["x=$y"] }), InputError);
});
