/** `slipway lock …`: locksmithctl's verbs against the etcd v3 reboot semaphore. */
import type { Command } from "commander";
import { InputError } from "../errors.ts";
import type { EtcdSemaphore } from "../lock/etcd-semaphore.ts";
import { formatTable, printJson } from "./output.ts";

interface LockOpts {
  group?: string;
  endpoints?: string;
  root: string;
  json?: boolean;
}

async function semaphoreFor(opts: LockOpts): Promise<{ sem: EtcdSemaphore; root: string }> {
  // Loaded here, not at startup: other commands need none of the etcd code.
  const [{ loadConfig }, { EtcdClient }, { EtcdSemaphore }] = await Promise.all([
    import("../agent/config.ts"),
    import("../lock/etcd.ts"),
    import("../lock/etcd-semaphore.ts"),
  ]);
  const config = loadConfig(opts.root);
  const endpoints = opts.endpoints
    ? opts.endpoints.split(",").map((s) => s.trim())
    : config.etcdEndpoints;
  if (endpoints.length === 0) {
    throw new InputError("no etcd endpoints: pass --endpoints or set ETCD_ENDPOINTS", {
      where: "update.conf",
    });
  }
  const sem = new EtcdSemaphore({
    client: new EtcdClient({ endpoints }),
    group: opts.group ?? config.lockGroup,
    defaultMax: config.lockMax,
    keyPrefix: config.etcdLockPrefix,
  });
  return { sem, root: opts.root };
}

async function machineId(root: string): Promise<string> {
  const { readMachineId } = await import("../agent/machine-id.ts");
  return readMachineId(root);
}

function common(cmd: Command): Command {
  return cmd
    .option("--group <group>", "lock group (default: LOCK_GROUP or GROUP from update.conf)")
    .option("--endpoints <urls>", "comma-separated etcd URLs (default: ETCD_ENDPOINTS)")
    .option("--root <dir>", "host root holding etc/slipway/update.conf", "/");
}

export function register(program: Command): void {
  const lock = program
    .command("lock")
    .description("inspect and manage the fleet reboot lock (etcd v3 semaphore)");

  common(lock.command("status"))
    .description("show the semaphore: places and holders")
    .option("--json", "machine-readable output")
    .action(async (opts: LockOpts) => {
      const { sem } = await semaphoreFor(opts);
      const s = await sem.status();
      if (opts.json) {
        printJson({
          key: sem.key,
          exists: s.exists,
          total_slots: s.total_slots,
          holders: s.holders,
        });
        return;
      }
      process.stdout.write(
        `key: ${sem.key}${s.exists ? "" : " (not created yet)"}\n` +
          `available: ${Math.max(0, s.total_slots - s.holders.length)}\nmax: ${s.total_slots}\n`,
      );
      if (s.holders.length > 0) {
        process.stdout.write(
          `${formatTable(
            ["HOLDER"],
            s.holders.map((h) => [h]),
          )}\n`,
        );
      }
    });

  common(lock.command("lock [id]"))
    .description("take a place for id (default: this host's machine id)")
    .action(async (id: string | undefined, opts: LockOpts) => {
      const { sem, root } = await semaphoreFor(opts);
      const holder = id ?? (await machineId(root));
      if (!(await sem.lock(holder))) {
        const s = await sem.status();
        process.stderr.write(
          `slipway: every place is held (${s.holders.join(", ")}); ${holder} did not get one\n`,
        );
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`${holder} holds a place in ${sem.key}\n`);
    });

  common(lock.command("unlock [id]"))
    .description("free the place held by id (default: this host), e.g. for a dead host")
    .action(async (id: string | undefined, opts: LockOpts) => {
      const { sem, root } = await semaphoreFor(opts);
      const holder = id ?? (await machineId(root));
      if (!(await sem.unlock(holder))) {
        process.stderr.write(`slipway: ${holder} holds no place in ${sem.key}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`${holder} released its place in ${sem.key}\n`);
    });

  common(lock.command("set-max <n>"))
    .description("set how many hosts may reboot at once")
    .action(async (n: string, opts: LockOpts) => {
      if (!/^\d+$/.test(n))
        throw new InputError(`max must be a whole number, got ${n}`, { where: "set-max" });
      const { sem } = await semaphoreFor(opts);
      const old = await sem.setMax(Number(n));
      process.stdout.write(`old: ${old}\nnew: ${n}\n`);
    });
}
