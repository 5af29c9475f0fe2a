/**
 * The image config: one YAML file describing one OS image. The schema is the
 * single source of truth for defaults and validation; `docs/config.md`
 * documents every key.
 */
import { z } from "zod";
import { REBOOT_STRATEGIES } from "../agent/config.ts";

/** A size such as `128M`, `1G`, `512MiB` or a plain number of MiB. */
const SIZE_RE = /^(\d+)\s*(k|m|g|t)?(i?b)?$/i;

export function parseSizeMiB(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value > 0 ? value : undefined;
  const m = SIZE_RE.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? "m").toLowerCase();
  const mib =
    unit === "k" ? n / 1024 : unit === "m" ? n : unit === "g" ? n * 1024 : n * 1024 * 1024;
  return Number.isInteger(mib) && mib > 0 ? mib : undefined;
}

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const mib = parseSizeMiB(v);
  if (mib === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `not a size: ${JSON.stringify(v)} (use e.g. 128M, 1G or a number of MiB)`,
    });
    return z.NEVER;
  }
  return mib;
});

const debianName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9+.-]*$/, "not a Debian package name (lower case, digits, + . -)");

const unitName = z
  .string()
  .regex(
    /^[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|path|target|mount|automount|swap)$/,
    "not a systemd unit name (e.g. sshd.service)",
  );

const absPath = z.string().regex(/^\/[^\0]*$/, "must be an absolute path");

const envKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not an environment variable name");

/** The agent's own list (src/agent/config.ts), so the two cannot drift apart. */
export { REBOOT_STRATEGIES };

const httpUrl = z.url({ protocol: /^https?$/ });

const overlay = z.strictObject({
  /** Directory holding the files, relative to the config file. */
  source: z.string().min(1),
  /** Where in the image the directory's content lands: /usr/... or /etc/... */
  target: absPath
    .refine((p) => /^\/(usr|etc)(\/|$)/.test(p), "overlays go into /usr or /etc")
    .default("/usr"),
});

const user = z.strictObject({
  name: z.string().regex(/^[a-z_][a-z0-9_-]*$/, "not a user name"),
  groups: z.array(z.string()).default([]),
  /** Already-hashed password (crypt(3) form), e.g. from `mkpasswd -m sha-512`. */
  passwordHash: z.string().optional(),
  sshAuthorizedKeys: z.array(z.string()).default([]),
  shell: absPath.default("/bin/bash"),
});

const oemVariant = z.strictObject({
  /** Platform id, e.g. `qemu`, `gce`, `azure`; also the ignition.platform.id. */
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "not a platform id (lower case, digits, _ -)"),
  /** Directory whose content goes into the OEM partition (relative to the config). */
  files: z.string().optional(),
  /** Fields written to the OEM partition's environment file (/etc/environment source). */
  environment: z.record(envKey, z.string()).default({}),
  /** Extra kernel command-line arguments for this platform. */
  cmdline: z.array(z.string()).default([]),
});

export const imageConfigSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "not an image name (lower case, digits, _ -)"),
  /** Pretty name for os-release; defaults to the name. */
  prettyName: z.string().optional(),
  version: z
    .strictObject({
      /** `date`: YYYY.MM.DD.N, N counting builds of that day; `semver`: `value` as given. */
      scheme: z.enum(["date", "semver"]).default("date"),
      value: z
        .string()
        .regex(/^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/, "not a semantic version (e.g. 1.2.3)")
        .optional(),
    })
    .default({ scheme: "date" })
    .refine((v) => v.scheme !== "semver" || v.value !== undefined, {
      message: "scheme semver needs a value (e.g. value: 1.0.0)",
      path: ["value"],
    }),
  debian: z
    .strictObject({
      suite: z
        .string()
        .regex(/^[a-z-]+$/, "not a Debian suite name")
        .default("trixie"),
      mirror: z.url({ protocol: /^https?$/ }).default("http://deb.debian.org/debian"),
      components: z.array(z.string()).default(["main"]),
    })
    .default({ suite: "trixie", mirror: "http://deb.debian.org/debian", components: ["main"] }),
  /** Packages added to slipway's base set (systemd, kernel, dracut, ...). */
  packages: z.array(debianName).default([]),
  kernel: z
    .strictObject({
      /** Extra kernel command-line arguments, appended after slipway's own. */
      cmdline: z.array(z.string().regex(/^\S+$/, "one argument per entry, no spaces")).default([]),
    })
    .default({ cmdline: [] }),
  overlays: z.array(overlay).default([]),
  units: z
    .strictObject({
      enable: z.array(unitName).default([]),
      disable: z.array(unitName).default([]),
      mask: z.array(unitName).default([]),
    })
    .default({ enable: [], disable: [], mask: [] }),
  /** `dev` images allow debug access; `prod` images have none and verify /usr with dm-verity. */
  flavour: z.enum(["dev", "prod"]).default("dev"),
  dev: z
    .strictObject({
      /** Log root in automatically on the console (tty1 and ttyS0). */
      autologin: z.boolean().default(true),
      /** Plain-text debug password for root and every user (set_shared_user_password). */
      debugPassword: z.string().min(1).optional(),
      users: z.array(user).default([]),
    })
    .default({ autologin: true, users: [] }),
  prod: z
    .strictObject({
      /** Update-signing public key (PEM), relative to the config; embedded in /usr. */
      signingKey: z.string().optional(),
    })
    .default({}),
  oem: z.array(oemVariant).default([{ id: "qemu", environment: {}, cmdline: [] }]),
  partitions: z
    .strictObject({
      esp: size.default(128),
      biosBoot: size.default(2),
      usr: size.default(1024),
      oem: size.default(128),
      oemConfig: size.default(64),
      root: size.default(1024),
    })
    .default({ esp: 128, biosBoot: 2, usr: 1024, oem: 128, oemConfig: 64, root: 1024 }),
  usr: z
    .strictObject({
      filesystem: z.literal("erofs").default("erofs"),
      /** `lz4hc` saves slot space; `none` builds in ~1 s and deltas better (CI). */
      compression: z.enum(["lz4hc", "lz4", "none"]).default("lz4hc"),
    })
    .default({ filesystem: "erofs", compression: "lz4hc" }),
  update: z
    .strictObject({
      server: z.url({ protocol: /^https?$/ }).optional(),
      group: z
        .string()
        .regex(/^[a-zA-Z0-9.-]+$/, "not a group name ([a-zA-Z0-9.-]+)")
        .default("stable"),
      rebootStrategy: z.enum(REBOOT_STRATEGIES).default("reboot"),
      rebootWindowStart: z.string().optional(),
      rebootWindowLength: z.string().optional(),
      /** etcd v3 endpoints for `etcd-lock` (and `best-effort`). */
      etcdEndpoints: z.array(httpUrl).default([]),
      /** FleetLock base URL for `fleetlock`, e.g. `slipway serve`'s URL. */
      fleetlockUrl: httpUrl.optional(),
      /** Reboot-lock group; the agent defaults it to the update group. */
      lockGroup: z
        .string()
        .regex(/^[a-zA-Z0-9._-]+$/, "not a lock group name ([a-zA-Z0-9._-]+)")
        .optional(),
    })
    // A lock strategy without its endpoint is allowed: hosts may set it in /etc/slipway/update.conf.
    .default({ group: "stable", rebootStrategy: "reboot", etcdEndpoints: [] }),

  /** Disk image formats `slipway build` writes besides raw (see `slipway convert`). */
  formats: z.array(z.enum(["qcow2", "vmdk", "vhd", "vhdx", "gce"])).default([]),
});

export type ImageConfig = z.output<typeof imageConfigSchema>;
export type OemVariant = ImageConfig["oem"][number];
export type Overlay = ImageConfig["overlays"][number];
