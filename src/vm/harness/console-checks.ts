/**
 * Console checks: serial-console lines that mean a test failed even when the scenario's own
 * checks passed (kola's idea). Each finding quotes the line, so a report says what went wrong.
 * "fatal" findings mean the boot cannot go on (the harness stops waiting at once).
 */

export type ConsoleCheckId =
  | "kernel-panic"
  | "oops"
  | "kernel-bug"
  | "soft-lockup"
  | "kernel-warning"
  | "emergency"
  | "segfault"
  | "oom-killer"
  | "failed-unit"
  | "ignition-failed";

export interface ConsoleCheck {
  id: ConsoleCheckId;
  /** Boot cannot continue: stop waiting for ssh. */
  fatal: boolean;
  /** Expected when an emulated CPU is starved by a busy host: recorded, not a failure under TCG. */
  tcgNoise?: boolean;
  pattern: RegExp;
  describe: string;
}

export const CONSOLE_CHECKS: readonly ConsoleCheck[] = [
  {
    id: "kernel-panic",
    fatal: true,
    pattern: /Kernel panic - not syncing/,
    describe: "kernel panic",
  },
  {
    id: "oops",
    fatal: false,
    pattern: /\bOops: |Internal error: Oops/,
    describe: "kernel Oops",
  },
  {
    id: "kernel-bug",
    fatal: false,
    pattern:
      /\bBUG: (kernel NULL pointer|unable to handle|scheduling while atomic|KASAN|sleeping function)/,
    describe: "kernel BUG",
  },
  {
    id: "soft-lockup",
    fatal: false,
    tcgNoise: true,
    pattern: /\bBUG: soft lockup|rcu: INFO: rcu_\w+ (self-)?detected stall|rcu_\w+ detected stalls/,
    describe: "soft lockup / RCU stall",
  },
  {
    id: "kernel-warning",
    fatal: false,
    pattern: /\bWARNING: CPU: \d+ PID: \d+/,
    describe: "kernel WARNING",
  },
  {
    id: "emergency",
    fatal: true,
    pattern:
      /You are in emergency mode|Entering emergency mode|Started emergency\.service|Reached target emergency\.target|Emergency Shell|dracut-emergency|Starting Dracut Emergency Shell/,
    describe: "emergency shell",
  },
  {
    id: "segfault",
    fatal: false,
    pattern: /\bsegfault at [0-9a-f]+ ip [0-9a-f]+/,
    describe: "segfault",
  },
  {
    id: "oom-killer",
    fatal: false,
    pattern: /invoked oom-killer|Out of memory: Killed process|oom-kill:constraint/,
    describe: "oom-killer",
  },
  {
    // Before "failed-unit": an Ignition stage's failure ends the first boot. systemd shortens
    // long unit names on the console ("ignition-fetch-off…service"), so match the prefix.
    id: "ignition-failed",
    fatal: true,
    pattern: /Failed to start ignition-|\bignition\[\d+\]: .*CRITICAL/,
    describe: "Ignition failed",
  },
  {
    id: "failed-unit",
    fatal: false,
    pattern: /\[FAILED\] Failed to start .+/,
    describe: "failed unit",
  },
];

export interface ConsoleFinding {
  check: ConsoleCheckId;
  fatal: boolean;
  /** Set when the finding does not fail the test (starved emulated CPU under TCG). */
  ignored?: string;
  describe: string;
  /** The console line, cleaned of escapes and trimmed. */
  line: string;
  /** 1-based line number in the console log. */
  lineNo: number;
}

/** The line without escapes the runner leaves (e.g. ESC M from systemd's status) or controls. */
export function printable(line: string): string {
  return line
    .replace(/\x1b\[[0-9;:?]*[A-Za-z]|\x1b[@-Z\\-_]/g, "")
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "")
    .trim();
}

/**
 * Checks one line. `allow` lists patterns a scenario expects (e.g. its own failing unit in a
 * negative test); a matching line is not a finding.
 */
export function checkConsoleLine(
  line: string,
  lineNo: number,
  allow: readonly RegExp[] = [],
  accel: "tcg" | "kvm" = "kvm",
): ConsoleFinding | undefined {
  const text = printable(line);
  for (const c of CONSOLE_CHECKS) {
    if (!c.pattern.test(text)) continue;
    if (allow.some((a) => a.test(text))) return undefined;
    const f: ConsoleFinding = {
      check: c.id,
      fatal: c.fatal,
      describe: c.describe,
      line: text,
      lineNo,
    };
    if (c.tcgNoise && accel === "tcg") f.ignored = "emulated CPU starved by the host (TCG)";
    return f;
  }
  return undefined;
}

export function checkConsole(
  lines: readonly string[],
  allow: readonly RegExp[] = [],
): ConsoleFinding[] {
  const out: ConsoleFinding[] = [];
  lines.forEach((l, i) => {
    const f = checkConsoleLine(l, i + 1, allow);
    if (f) out.push(f);
  });
  return out;
}

/**
 * Ignition's own words about why it stopped, from console lines: its first error lines and its
 * "Ignition failed: …" summary (without the "CRITICAL :" level tag), joined with "; ".
 */
export function ignitionReason(lines: readonly string[]): string | undefined {
  const errors: string[] = [];
  for (const l of lines) {
    const m = /\bignition\[\d+\]:\s*(.*)$/.exec(printable(l));
    if (!m) continue;
    const text = m[1]!.replace(/^CRITICAL\s*:\s*/, "").trim();
    if (
      /\b(error|failed|invalid|unsupported|mismatch|not valid)\b/i.test(text) &&
      !errors.includes(text)
    )
      errors.push(text);
  }
  if (errors.length === 0) return undefined;
  // "Ignition failed: …" sums up the chain; keep it, with the first two details before it.
  const final = errors.find((e) => /^Ignition failed/.test(e));
  const details = errors.filter((e) => e !== final).slice(0, final ? 2 : 3);
  return [...details, ...(final ? [final] : [])].join("; ");
}

/** One finding per line as people read it: `failed unit: "[FAILED] Failed to start x."`. */
export function formatFinding(f: ConsoleFinding): string {
  return `${f.describe} (console line ${f.lineNo}): ${f.line}`;
}
