/** Instance states (Nebraska's set, which users know). */
export const InstanceStatus = {
  Undefined: "undefined",
  UpdateGranted: "update-granted",
  Downloading: "downloading",
  Downloaded: "downloaded",
  Installed: "installed",
  Complete: "complete",
  Error: "error",
  OnHold: "on-hold",
} as const;

export type InstanceStatusName = (typeof InstanceStatus)[keyof typeof InstanceStatus];

/** States of a host that holds a granted update it has not finished. */
export const IN_PROGRESS: readonly string[] = [
  InstanceStatus.UpdateGranted,
  InstanceStatus.Downloading,
  InstanceStatus.Downloaded,
  InstanceStatus.Installed,
];
