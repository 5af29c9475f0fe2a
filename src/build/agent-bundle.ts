/**
 * The update agent as every image ships it: the esbuild bundle (one .cjs for
 * the image's Node, no node_modules) and its systemd unit. Built once per
 * `slipway build`, before the up-to-date check, so an agent change is an
 * input change: it rebuilds the image.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleAgent } from "../../scripts/bundle-agent.ts";

const UNIT_SOURCE = join(import.meta.dirname, "../agent/systemd/slipway-agent.service");

export const AGENT_UNIT = "slipway-agent.service";
export const AGENT_BUNDLE_PATH = "usr/lib/slipway/slipway-agent.cjs";

export interface AgentFiles {
  bundle: string;
  unit: string;
  /** sha256 over bundle and unit: the customize stage's key uses it, not the text. */
  hash: string;
}

export async function buildAgentFiles(): Promise<AgentFiles> {
  const dir = mkdtempSync(join(tmpdir(), "slipway-agent-bundle-"));
  try {
    const out = join(dir, "slipway-agent.cjs");
    await bundleAgent(out);
    const bundle = readFileSync(out, "utf8");
    const unit = readFileSync(UNIT_SOURCE, "utf8");
    const hash = createHash("sha256").update(bundle).update("\0").update(unit).digest("hex");
    return { bundle, unit, hash };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
