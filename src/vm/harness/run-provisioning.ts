/**
 * Provisioning for `slipway run`: `--ignition FILE` or `--config FILE` (rendered like
 * `slipway config render`), and `--ssh`: a throwaway key for root, a free 127.0.0.1 port
 * forwarded to the guest's port 22, and the ssh command to print. Files live in a private
 * temporary directory until `cleanup()`.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InputError } from "../../errors.ts";
import type { IgnitionConfig } from "../../provision/model.ts";
import { ignitionJson } from "../../provision/render.ts";
import type { PortForward } from "../qemu.ts";
import { DEFAULT_SPEC, prepareIgnition, withRootKey } from "./provision.ts";
import { freePort, generateSshKey, sshCommandLine } from "./ssh.ts";

export interface RunProvisioningOptions {
  ignition?: string;
  config?: string;
  ssh?: boolean;
}

export interface RunProvisioning {
  /** For QemuOptions.fwCfg (opt/com.coreos/config), when there is a config. */
  ignitionFile?: string;
  /** For QemuOptions.hostForwards, with --ssh. */
  forward?: PortForward;
  /** What to tell the user, with --ssh. */
  sshCommand?: string;
  cleanup(): Promise<void>;
}

export async function prepareRunProvisioning(o: RunProvisioningOptions): Promise<RunProvisioning> {
  if (o.ignition && o.config) throw new InputError("give --ignition or --config, not both");
  if (!o.ignition && !o.config && !o.ssh) return { cleanup: async () => undefined };
  const dir = await mkdtemp(join(tmpdir(), "slipway-run-"));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const key = o.ssh ? await generateSshKey(dir) : undefined;
    let text: string;
    if (o.ignition && key) {
      // A user's Ignition JSON: add the key for root, keep everything else.
      let parsed: IgnitionConfig;
      try {
        parsed = JSON.parse(readFileSync(o.ignition, "utf8")) as IgnitionConfig;
      } catch (e) {
        throw new InputError(`--ssh needs a JSON Ignition config: ${(e as Error).message}`, {
          where: o.ignition,
        });
      }
      text = ignitionJson(withRootKey(parsed, key.publicKey));
    } else if (o.ignition) {
      text = readFileSync(o.ignition, "utf8");
    } else if (o.config) {
      text = prepareIgnition({ configFile: o.config }, key?.publicKey).text;
    } else {
      text = ignitionJson(withRootKey({ ignition: { version: DEFAULT_SPEC } }, key!.publicKey));
    }
    const ignitionFile = join(dir, "config.ign");
    await writeFile(ignitionFile, text, { mode: 0o600 });
    if (!key) return { ignitionFile, cleanup };
    const hostPort = await freePort();
    return {
      ignitionFile,
      forward: { hostPort, guestPort: 22 },
      sshCommand: sshCommandLine({ port: hostPort, key: key.path, user: "root" }),
      cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
