/**
 * Byte access to a disk: a regular file or a block device, with synchronous
 * node:fs calls that exist on Node 20 (the agent's runtime). Also a
 * Buffer-backed disk so the parser can be tested in-process.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from "node:fs";
import { InputError, SlipwayError } from "../../errors.ts";

export interface Disk {
  /** Name used in messages: the path. */
  readonly name: string;
  readonly sizeBytes: bigint;
  /** Logical sector size the device reports (512 for files and buffers). */
  readonly logicalSectorSize: number;
  read(offset: bigint, length: number): Buffer;
  write(offset: bigint, data: Uint8Array): void;
  flush(): void;
  close(): void;
}

/** A disk kept in memory (tests, fuzzing). Reads past the end return zeros. */
export function bufferDisk(name: string, buf: Buffer): Disk {
  return {
    name,
    sizeBytes: BigInt(buf.length),
    logicalSectorSize: 512,
    read(offset, length) {
      const out = Buffer.alloc(length);
      const start = Number(offset);
      if (start < buf.length) buf.copy(out, 0, start, Math.min(buf.length, start + length));
      return out;
    },
    write(offset, data) {
      buf.set(data, Number(offset));
    },
    flush() {},
    close() {},
  };
}

export function openDisk(path: string, mode: "r" | "rw"): Disk {
  let fd: number;
  try {
    fd = openSync(path, mode === "r" ? "r" : "r+");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`cannot open disk (${code ?? String(err)})`, { where: path, cause: err });
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (st.isFile()) return fileDisk(path, fd, st.size, 512);
    if (st.isBlockDevice()) return fileDisk(path, fd, probeSize(fd), logicalSectorSize(st.rdev));
    throw new InputError("not a regular file or block device", { where: path });
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function fileDisk(name: string, fd: number, sizeBytes: bigint, logicalSectorSize: number): Disk {
  return {
    name,
    sizeBytes,
    logicalSectorSize,
    read(offset, length) {
      const out = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, out, done, length - done, offset + BigInt(done));
        if (n === 0) break; // past the end: the rest stays zero
        done += n;
      }
      return out;
    },
    write(offset, data) {
      let done = 0;
      while (done < data.length) {
        const n = writeSync(fd, data, done, data.length - done, Number(offset) + done);
        if (n <= 0) throw new SlipwayError("short write", { where: name });
        done += n;
      }
    },
    flush() {
      fsyncSync(fd);
    },
    close() {
      closeSync(fd);
    },
  };
}

/** The kernel's logical block size for a block device (sysfs), 512 when unknown. */
function logicalSectorSize(rdev: bigint): number {
  // Linux dev_t encoding: 12-bit major and 20-bit minor, split across the word.
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  const base = `/sys/dev/block/${major}:${minor}`;
  for (const file of [`${base}/queue/logical_block_size`, `${base}/../queue/logical_block_size`]) {
    try {
      const n = Number(readFileSync(file, "utf8").trim());
      if (n === 512 || n === 4096) return n;
    } catch {
      // not there (a partition has it on its parent disk); try the next
    }
  }
  return 512;
}

/**
 * Size of a block device without ioctls: fstat reports 0 for them, and Node has
 * no lseek, so find the first 512-byte sector a read cannot reach (exponential
 * then binary search; every block device size is a multiple of 512).
 */
function probeSize(fd: number): bigint {
  const one = Buffer.alloc(1);
  const readable = (sector: bigint) => readSync(fd, one, 0, 1, sector * 512n) === 1;
  if (!readable(0n)) return 0n;
  let lo = 0n; // readable
  let hi = 1n;
  while (readable(hi)) {
    lo = hi;
    hi *= 2n;
  }
  while (hi - lo > 1n) {
    const mid = (lo + hi) / 2n;
    if (readable(mid)) lo = mid;
    else hi = mid;
  }
  return hi * 512n;
}
