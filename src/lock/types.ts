/** What the agent needs from any reboot-lock backend (etcd v3 semaphore, FleetLock). */
export interface RebootLock {
  /** Human-readable backend name for logs and status. */
  readonly describe: string;
  /** Take a place before rebooting; false when every place is held (try again later). */
  acquire(): Promise<boolean>;
  /** Give the place back once the host is healthy; a no-op when not held. */
  release(): Promise<void>;
}
