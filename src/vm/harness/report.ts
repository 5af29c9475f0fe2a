/**
 * Results of a `slipway test` run: `report.json` (for machines and the CLI's --json) and
 * `junit.xml` (for CI dashboards), written atomically into the output directory. An expected
 * failure counts as a pass; its reasons stay in the report.
 */
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { XMLBuilder } from "fast-xml-parser";
import type { TestResult } from "./runner.ts";

export interface RunReport {
  image: string;
  started: string;
  durationSeconds: number;
  summary: { total: number; ok: number; notOk: number };
  tests: TestResult[];
}

export function makeReport(
  image: string,
  started: Date,
  tests: TestResult[],
  durationSeconds: number,
): RunReport {
  const ok = tests.filter((t) => t.ok).length;
  return {
    image,
    started: started.toISOString(),
    durationSeconds,
    summary: { total: tests.length, ok, notOk: tests.length - ok },
    tests,
  };
}

/** JUnit XML as Jenkins/GitLab read it: one testsuite, one testcase per scenario. */
export function junitXml(r: RunReport): string {
  const builder = new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: "@",
    format: true,
    suppressEmptyNode: true,
  });
  const cases = r.tests.map((t) => {
    const c: Record<string, unknown> = {
      "@name": t.name,
      "@classname": "slipway.e2e",
      "@time": t.durationSeconds.toFixed(1),
    };
    const details = [
      `outcome: ${t.outcome} (expected: ${t.expected})`,
      ...t.failures,
      ...Object.entries(t.logs).map(([k, v]) => `${k} log: ${t.name}/${v}`),
    ].join("\n");
    if (!t.ok) {
      const tag = t.outcome === "error" ? "error" : "failure";
      c[tag] = { "@message": t.failures[0] ?? t.outcome, "@type": t.outcome, "#text": details };
    }
    c["system-out"] = details;
    return c;
  });
  const xml = builder.build({
    "?xml": { "@version": "1.0", "@encoding": "UTF-8" },
    testsuites: {
      "@name": "slipway test",
      "@tests": r.summary.total,
      "@failures": r.tests.filter((t) => !t.ok && t.outcome !== "error").length,
      "@errors": r.tests.filter((t) => !t.ok && t.outcome === "error").length,
      "@time": r.durationSeconds.toFixed(1),
      testsuite: {
        "@name": "e2e",
        "@tests": r.summary.total,
        "@failures": r.tests.filter((t) => !t.ok && t.outcome !== "error").length,
        "@errors": r.tests.filter((t) => !t.ok && t.outcome === "error").length,
        "@time": r.durationSeconds.toFixed(1),
        "@timestamp": r.started,
        testcase: cases,
      },
    },
  }) as string;
  return xml;
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** Writes report.json and junit.xml; returns their paths. */
export async function writeReports(
  outDir: string,
  r: RunReport,
): Promise<{ json: string; junit: string }> {
  const json = join(outDir, "report.json");
  const junit = join(outDir, "junit.xml");
  await writeAtomic(json, `${JSON.stringify(r, null, 2)}\n`);
  await writeAtomic(junit, junitXml(r));
  return { json, junit };
}
