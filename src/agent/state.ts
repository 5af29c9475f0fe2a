/**
 * The agent's update state machine, one enum and one transition function
 * (Zincati's shape). Every transition is recorded so `slipway update status`
 * can show how the agent got where it is.
 */
export const AGENT_STATES = [
  "initializing",
  "health-check",
  "idle",
  "checking",
  "update-available",
  "downloading",
  "verifying",
  "finalizing",
  "updated-need-reboot",
  "rebooting",
  "reporting-error",
] as const;
export type AgentState = (typeof AGENT_STATES)[number];

export type AgentEvent =
  | "started"
  | "healthy"
  | "still-staged"
  | "check"
  | "no-update"
  | "update-found"
  | "download-start"
  | "downloaded"
  | "verified"
  | "finalized"
  | "reboot"
  | "fail"
  | "reported"
  | "reset";

const TABLE: Record<AgentState, Partial<Record<AgentEvent, AgentState>>> = {
  initializing: { started: "health-check", fail: "reporting-error" },
  // Restarted without a reboot since staging: go back to waiting for the reboot.
  "health-check": {
    healthy: "idle",
    "still-staged": "updated-need-reboot",
    fail: "reporting-error",
  },
  idle: { check: "checking" },
  checking: { "no-update": "idle", "update-found": "update-available", fail: "reporting-error" },
  "update-available": {
    "download-start": "downloading",
    "no-update": "idle",
    fail: "reporting-error",
  },
  downloading: { downloaded: "verifying", fail: "reporting-error" },
  verifying: { verified: "finalizing", fail: "reporting-error" },
  finalizing: { finalized: "updated-need-reboot", fail: "reporting-error" },
  // A check while staged only asks the server about newer versions; the state stays.
  "updated-need-reboot": { reboot: "rebooting" },
  // A reboot that did not happen (command failed) returns to waiting.
  rebooting: { fail: "updated-need-reboot" },
  "reporting-error": { reported: "idle" },
};

/** Every state may be reset to idle by the operator except a reboot in progress. */
export function transition(from: AgentState, event: AgentEvent): AgentState {
  if (event === "reset" && from !== "rebooting") return "idle";
  const to = TABLE[from][event];
  if (to === undefined) throw new Error(`agent state machine: no "${event}" from ${from}`);
  return to;
}

export interface TransitionRecord {
  at: string;
  from: AgentState;
  event: AgentEvent;
  to: AgentState;
  detail?: string;
}
