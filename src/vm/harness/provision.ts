/**
 * The Ignition config a test VM gets through fw_cfg: the scenario's config rendered with
 * `slipway config render` (YAML, #cloud-config or Ignition JSON), plus the run's ssh key for
 * root so the harness can log in. `${SLIPWAY_SSH_PUBKEY}` in a config is replaced by that key
 * (to give it to the scenario's own users). A raw `ignition:` file goes in byte for byte.
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { InputError } from "../../errors.ts";
import type { IgnitionConfig } from "../../provision/model.ts";
import { ignitionJson, renderConfig } from "../../provision/render.ts";
import { formatDiagnostic } from "../../provision/source.ts";

// biome-ignore lint/suspicious/noTemplateCurlyInString: a placeholder in config files, not a template
export const PUBKEY_PLACEHOLDER = "${SLIPWAY_SSH_PUBKEY}";

/** Spec version of the config the harness writes when a scenario gives none. */
export const DEFAULT_SPEC = "3.3.0";

export interface PreparedIgnition {
  /** Ignition JSON text for the VM. */
  text: string;
  /** False for raw configs: the harness cannot log in unless the config adds its key. */
  harnessKey: boolean;
}

/** `publicKey` undefined: render only (the placeholder must then not be used). */
export function prepareIgnition(
  source: { configFile?: string; ignitionFile?: string },
  publicKey: string | undefined,
): PreparedIgnition {
  const substitute = (t: string) =>
    publicKey === undefined ? t : t.replaceAll(PUBKEY_PLACEHOLDER, publicKey);
  if (source.ignitionFile) {
    return { text: substitute(readFileSync(source.ignitionFile, "utf8")), harnessKey: false };
  }
  let config: IgnitionConfig = { ignition: { version: DEFAULT_SPEC } };
  if (source.configFile) {
    const r = renderConfig(substitute(readFileSync(source.configFile, "utf8")), source.configFile);
    const errors = r.diagnostics.filter((d) => d.severity === "error");
    if (!r.config || errors.length > 0) {
      throw new InputError(
        `config does not render:\n${(errors.length ? errors : r.diagnostics).map(formatDiagnostic).join("\n")}`,
        { where: source.configFile },
      );
    }
    config = r.config;
  }
  if (publicKey === undefined) return { text: ignitionJson(config), harnessKey: false };
  return { text: ignitionJson(withRootKey(config, publicKey)), harnessKey: true };
}

/** The config with `publicKey` added to root's authorized keys (root kept if present). */
export function withRootKey(config: IgnitionConfig, publicKey: string): IgnitionConfig {
  const copy = structuredClone(config) as IgnitionConfig & {
    passwd?: { users?: { name: string; sshAuthorizedKeys?: string[] }[] };
  };
  copy.passwd ??= {};
  copy.passwd.users ??= [];
  let root = copy.passwd.users.find((u) => u.name === "root");
  if (!root) {
    root = { name: "root" };
    copy.passwd.users.push(root);
  }
  root.sshAuthorizedKeys = [...(root.sshAuthorizedKeys ?? []), publicKey];
  return copy;
}

export async function writeIgnition(file: string, p: PreparedIgnition): Promise<void> {
  await writeFile(file, p.text, { mode: 0o600 });
}
