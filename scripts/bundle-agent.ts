/**
 * Build the agent as one JavaScript file for images (Node 20, no
 * node_modules): `node scripts/bundle-agent.ts [out.cjs]`. Prints the inputs
 * with --metafile-inputs so tests can prove no server or build code got in.
 */

import { join } from "node:path";
import { build, type Metafile } from "esbuild";

const repo = join(import.meta.dirname, "..");

export async function bundleAgent(outfile: string): Promise<{ inputs: string[]; bytes: number }> {
  const result = await build({
    entryPoints: [join(repo, "src/agent/bundle-main.ts")],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    minify: false,
    sourcemap: false,
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
    banner: { js: "#!/usr/bin/env node" },
  });
  const meta = result.metafile as Metafile;
  const out = Object.values(meta.outputs)[0]!;
  return { inputs: Object.keys(meta.inputs).sort(), bytes: out.bytes };
}

if (import.meta.main) {
  const out = process.argv[2] ?? join(repo, "dist/slipway-agent.cjs");
  const { inputs, bytes } = await bundleAgent(out);
  process.stdout.write(`${out}: ${bytes} bytes from ${inputs.length} inputs\n`);
  if (process.argv.includes("--metafile-inputs")) process.stdout.write(`${inputs.join("\n")}\n`);
}
