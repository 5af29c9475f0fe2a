/**
 * Omaha v3 messages as update_engine (Flatcar/ChromeOS lineage) sends and accepts them.
 * Plain data: the codec in request.ts/response.ts turns these into XML and back; nothing here
 * knows about HTTP.
 */

/** Event types the update client reports (`<event eventtype=…>`). */
export const EventType = {
  Unknown: 0,
  DownloadComplete: 1,
  InstallComplete: 2,
  /** The update attempt finished; EventResult says how (installed, rebooted into it, error). */
  UpdateComplete: 3,
  /** Download of the payload started. */
  DownloadStarted: 13,
  /** Download of the payload finished (written, not yet installed). */
  DownloadFinished: 14,
} as const;

/** Event results (`<event eventresult=…>`). */
export const EventResult = {
  Error: 0,
  /** Installed into the passive slot; a reboot is needed. */
  Success: 1,
  /** Booted into the new version: the update is complete. */
  SuccessReboot: 2,
  /** The update was deferred (by policy or the user). */
  UpdateDeferred: 9,
} as const;

/**
 * Error codes sent with `eventresult="0"` (`errorcode=…`). The low numbers follow
 * update_engine's action exit codes; `Rollback` is Slipway's: the host booted back into the
 * version it had before the update (GRUB fell back to the old slot).
 */
export const ErrorCode = {
  Success: 0,
  Error: 1,
  OmahaRequestError: 2,
  OmahaResponseHandlerError: 3,
  FilesystemCopierError: 4,
  PostinstallRunnerError: 5,
  DownloadTransferError: 9,
  PayloadHashMismatch: 10,
  PayloadSizeMismatch: 11,
  DownloadPayloadVerificationError: 12,
  DownloadWriteError: 14,
  NewRootfsVerificationError: 15,
  Rollback: 10000,
} as const;

/** `status` of an `<app>` or `<updatecheck>` in a response. */
export type AppStatus =
  | "ok"
  | "restricted"
  | "error-unknownApplication"
  | "error-invalidAppId"
  | "error-internal"
  | "error-hash"
  | "error-osnotsupported"
  | "error-unsupportedProtocol";

export type UpdateCheckStatus = "ok" | "noupdate" | "error-internal" | "error-hash" | AppStatus;

export interface OmahaOs {
  version?: string;
  platform?: string;
  sp?: string;
  arch?: string;
}

export interface RequestPing {
  /** 1 when the host was active since the last ping. */
  active?: number;
}

export interface RequestUpdateCheck {
  targetVersionPrefix?: string;
}

export interface RequestEvent {
  type: number;
  result: number;
  errorCode?: number;
  /** The version the host ran before the update; update_engine sends it on the first check after a reboot. */
  previousVersion?: string;
}

export interface RequestApp {
  appId: string;
  version?: string;
  /** Group or channel name the host asks to follow. */
  track?: string;
  bootId?: string;
  machineId?: string;
  machineAlias?: string;
  oem?: string;
  oemVersion?: string;
  alephVersion?: string;
  board?: string;
  lang?: string;
  deltaOkay?: boolean;
  ping?: RequestPing;
  updateCheck?: RequestUpdateCheck;
  events: RequestEvent[];
}

export interface OmahaRequest {
  protocol: "3.0";
  /** Client program version, e.g. "update_engine-0.4.10" or "slipway-agent-0.1.0". */
  version?: string;
  updaterVersion?: string;
  installSource?: string;
  isMachine?: boolean;
  os?: OmahaOs;
  apps: RequestApp[];
}

export interface ResponsePackage {
  name: string;
  /** Base64 SHA-1 in old servers; kept for clients that still read it. */
  hash?: string;
  /** Hex SHA-256 of the payload (`hash_sha256`). */
  hashSha256?: string;
  size: number;
  required: boolean;
}

export interface ResponseAction {
  event: "preinstall" | "install" | "update" | "postinstall";
  /** Base64 SHA-256 of the payload; update_engine verifies the download with it. */
  sha256?: string;
  needsAdmin?: boolean;
  isDelta?: boolean;
  disablePayloadBackoff?: boolean;
  metadataSize?: number;
  metadataSignatureRsa?: string;
  deadline?: string;
  /** Attributes not modelled above, passed through as they are. */
  extra?: Record<string, string>;
}

export interface ResponseManifest {
  version: string;
  packages: ResponsePackage[];
  actions: ResponseAction[];
}

export interface ResponseUpdateCheck {
  status: UpdateCheckStatus;
  /** Base URLs; the client joins codebase + package name. */
  urls: string[];
  manifest?: ResponseManifest;
  /** Seconds until the next check the server asks for (`PollInterval`). */
  pollInterval?: number;
}

export interface ResponseApp {
  appId: string;
  status: AppStatus;
  /** Present when the request app had a ping. */
  ping?: { status: "ok" };
  /** One acknowledgement per request event, in order. */
  events: { status: "ok" }[];
  updateCheck?: ResponseUpdateCheck;
}

export interface OmahaResponse {
  protocol: "3.0";
  server?: string;
  dayStart?: { elapsedSeconds: number; elapsedDays?: number };
  apps: ResponseApp[];
}
