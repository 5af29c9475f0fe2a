/** The host's identity for Omaha and reboot locks: systemd's /etc/machine-id. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SlipwayError } from "../errors.ts";

export function readMachineId(root = "/"): string {
  const path = join(root, "etc/machine-id");
  try {
    const id = readFileSync(path, "utf8").trim();
    if (/^[0-9a-f]{32}$/.test(id)) return id;
    throw new SlipwayError(`not a machine id: ${JSON.stringify(id.slice(0, 40))}`, { where: path });
  } catch (err) {
    if (err instanceof SlipwayError) throw err;
    throw new SlipwayError(`cannot read the machine id: ${(err as Error).message}`, {
      where: path,
    });
  }
}
