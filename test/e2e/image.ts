/**
 * The disk the e2e scenarios boot: `slipway build` output of examples/minimal-dev plus what the
 * harness needs to reach a host, added the way a user would (config keys and an /etc overlay):
 *
 *   - package `openssh-server`, sshd reading Ignition's `~/.ssh/authorized_keys.d/*`;
 *   - DHCP on the virtio NIC (systemd-networkd), ssh and networkd enabled;
 *   - masks for what only slows a TCG boot down or talks on the serial console;
 *   - a 600 s device timeout (loaded CI hosts under TCG have shown virtio disks after 90 s).
 *
 * Ignition, its first-boot stamp and console error lines come with every build. Built once per
 * change of the inputs through test/build/fixture.ts (shared stage cache); SLIPWAY_E2E_IMAGE
 * points the tests at any disk instead.
 */
import { join } from "node:path";
import {
  appendToList,
  customBuild,
  type ExampleBuild,
  editConfig,
  overlayDir,
  putFile,
} from "../build/fixture.ts";

export type { ExampleBuild };

const SSHD_CONF = `# Ignition writes keys to ~/.ssh/authorized_keys.d/ignition.
AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/*
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
`;

const DHCP_NETWORK = `[Match]
Name=en* eth*

[Network]
DHCP=ipv4
`;

/** Units that only cost boot time under TCG or write to the serial console the harness reads. */
const MASKED = [
  "serial-getty@ttyS0.service",
  "systemd-networkd-wait-online.service",
  // Host keys come from the package's postinst; regenerating them costs minutes under TCG.
  "sshd-keygen.service",
];

export const E2E_HOSTNAME = "slipway-e2e";

/** Edit a fresh copy of the example (its slipway.yaml and /etc overlay) into the e2e base. */
export function applyE2eBase(workDir: string): void {
  editConfig(workDir, (doc) => {
    appendToList(doc, ["packages"], ["openssh-server"]);
    appendToList(doc, ["kernel", "cmdline"], ["systemd.default_device_timeout_sec=600"]);
    appendToList(doc, ["units", "enable"], ["systemd-networkd.service", "ssh.service"]);
    appendToList(doc, ["units", "mask"], MASKED);
  });
  const etc = overlayDir(workDir, "/etc");
  putFile(etc, "ssh/sshd_config.d/50-slipway-e2e.conf", SSHD_CONF);
  putFile(etc, "systemd/network/20-wired.network", DHCP_NETWORK);
  putFile(etc, "hostname", `${E2E_HOSTNAME}\n`);
}

/**
 * A pipeline build of the e2e base, optionally changed further by `prepare` (it edits the work
 * dir after the base: config, overlays). Cached per `name` and input hash; the stage cache is
 * shared, so a variant costs only the stages its change reaches.
 */
export async function e2eBuild(
  name: string,
  prepare?: (workDir: string) => void,
): Promise<ExampleBuild> {
  return await customBuild(name, (w) => {
    applyE2eBase(w);
    prepare?.(w);
  });
}

/** Raw disk of a build (the path meta.json records for the `disk` artifact). */
export function diskOf(build: ExampleBuild): string {
  const disk = build.meta.artifacts.disk;
  if (!disk) throw new Error(`${build.buildDir}/meta.json: no disk artifact`);
  return join(build.buildDir, disk.path);
}

let memo: Promise<string> | undefined;

/** Path of the e2e disk image ($SLIPWAY_E2E_IMAGE, or the e2e build, built on first use). */
export function e2eImage(log: (l: string) => void = () => undefined): Promise<string> {
  const env = process.env.SLIPWAY_E2E_IMAGE;
  if (env) return Promise.resolve(env);
  memo ??= (async () => {
    const t0 = Date.now();
    log("slipway build of the e2e base (cached per input hash)");
    const b = await e2eBuild("e2e");
    log(`${b.meta.name} ${b.meta.version} in ${Math.round((Date.now() - t0) / 1000)} s`);
    return diskOf(b);
  })();
  return memo;
}

// `node test/e2e/image.ts` builds (or finds) the image and prints its path.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await e2eImage((l) => process.stderr.write(`e2e image: ${l}\n`)));
}
