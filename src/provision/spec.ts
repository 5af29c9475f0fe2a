/**
 * Ignition config spec versions, as the Ignition in Slipway images (Debian's ignition 2.14)
 * understands them. 2.14 knows 3.0.0–3.3.0 as stable and 3.4.0 only as "3.4.0-experimental";
 * a config that says "3.4.0" is refused at boot, so we never write that string.
 */

export const SUPPORTED_SPEC_VERSIONS = [
  "3.0.0",
  "3.1.0",
  "3.2.0",
  "3.3.0",
  "3.4.0-experimental",
] as const;
export type SpecVersion = (typeof SUPPORTED_SPEC_VERSIONS)[number];

/** Newest stable spec the image's Ignition accepts: what `slipway config render` writes. */
export const DEFAULT_SPEC_VERSION: SpecVersion = "3.3.0";

export function isSupportedSpec(v: string): v is SpecVersion {
  return (SUPPORTED_SPEC_VERSIONS as readonly string[]).includes(v);
}

/** The minor number of a 3.x spec (3.4.0-experimental → 4): fields are gated on it. */
export function specMinor(v: SpecVersion): number {
  return Number(v.split(".")[1]);
}

/**
 * The Ignition spec a user asks for, from a Butane-like header. Our own variant names the spec
 * directly; `fcos`/`flatcar` headers map as Butane maps them, so existing files keep working.
 */
const BUTANE_VARIANTS: Record<string, Record<string, string>> = {
  fcos: {
    "1.0.0": "3.0.0",
    "1.1.0": "3.1.0",
    "1.2.0": "3.2.0",
    "1.3.0": "3.2.0",
    "1.4.0": "3.3.0",
    "1.5.0": "3.4.0",
  },
  flatcar: { "1.0.0": "3.3.0", "1.1.0": "3.4.0" },
};

export const AUTHORING_VARIANT = "slipway";

/**
 * Resolve `variant`/`version` to a spec version. Returns an error message (a string) when the
 * pair is unknown; `note` explains a substitution the user should know about.
 */
export function resolveSpec(
  variant: string,
  version: string,
): { spec: SpecVersion; note?: string } | string {
  let wanted: string;
  if (variant === AUTHORING_VARIANT) {
    wanted = version;
  } else {
    const table = BUTANE_VARIANTS[variant];
    if (!table) {
      return `unknown variant "${variant}" (use "${AUTHORING_VARIANT}", "fcos" or "flatcar")`;
    }
    const mapped = table[version];
    if (!mapped) {
      return `unknown ${variant} version "${version}" (known: ${Object.keys(table).join(", ")})`;
    }
    wanted = mapped;
  }
  if (wanted === "3.4.0") {
    return {
      spec: "3.4.0-experimental",
      note: 'Ignition 2.14 in the image knows spec 3.4.0 only as "3.4.0-experimental"; writing that',
    };
  }
  if (isSupportedSpec(wanted)) return { spec: wanted };
  return `unsupported Ignition spec version "${wanted}" (supported: 3.0.0, 3.1.0, 3.2.0, 3.3.0, 3.4.0)`;
}
