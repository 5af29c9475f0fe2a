/**
 * Each stage's code version, in one light module: the up-to-date check
 * hashes them without loading the stages (and the boot code behind them).
 * Bump a stage's number when its code changes what it produces.
 */
export const STAGE_VERSIONS = {
  rootfs: 1,
  initrd: 3,
  customize: 5,
  usr: 1,
  root: 1,
  oem: 1,
  esp: 2,
  disk: 1,
} as const;
