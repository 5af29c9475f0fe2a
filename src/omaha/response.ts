/** Omaha v3 response: encode (server side) and decode (agent side). */
import type {
  AppStatus,
  OmahaResponse,
  ResponseAction,
  ResponseApp,
  ResponseManifest,
  ResponseUpdateCheck,
  UpdateCheckStatus,
} from "./types.ts";
import {
  attr,
  attrs,
  boolAttr,
  child,
  children,
  intAttr,
  OmahaDecodeError,
  parseXml,
  type XmlElement,
} from "./xml.ts";

export function encodeResponse(res: OmahaResponse): string {
  let xml = `<?xml version="1.0" encoding="UTF-8"?>\n<response${attrs([
    ["protocol", "3.0"],
    ["server", res.server],
  ])}>\n`;
  if (res.dayStart) {
    xml += ` <daystart${attrs([
      ["elapsed_seconds", res.dayStart.elapsedSeconds],
      ["elapsed_days", res.dayStart.elapsedDays],
    ])}></daystart>\n`;
  }
  for (const app of res.apps) xml += encodeApp(app);
  return `${xml}</response>\n`;
}

function encodeApp(app: ResponseApp): string {
  let xml = ` <app${attrs([
    ["appid", app.appId],
    ["status", app.status],
  ])}>\n`;
  if (app.ping) xml += `  <ping status="ok"></ping>\n`;
  for (const _ of app.events) xml += `  <event status="ok"></event>\n`;
  if (app.updateCheck) xml += encodeUpdateCheck(app.updateCheck);
  return `${xml} </app>\n`;
}

function encodeUpdateCheck(uc: ResponseUpdateCheck): string {
  const open = `  <updatecheck${attrs([
    ["status", uc.status],
    ["PollInterval", uc.pollInterval],
  ])}>`;
  if (!uc.manifest) return `${open}</updatecheck>\n`;
  let xml = `${open}\n   <urls>\n`;
  for (const url of uc.urls) xml += `    <url${attrs([["codebase", url]])}></url>\n`;
  xml += `   </urls>\n${encodeManifest(uc.manifest)}`;
  return `${xml}  </updatecheck>\n`;
}

function encodeManifest(m: ResponseManifest): string {
  let xml = `   <manifest${attrs([["version", m.version]])}>\n    <packages>\n`;
  for (const p of m.packages) {
    xml += `     <package${attrs([
      ["name", p.name],
      ["hash", p.hash],
      ["hash_sha256", p.hashSha256],
      ["size", p.size],
      ["required", p.required],
    ])}></package>\n`;
  }
  xml += "    </packages>\n    <actions>\n";
  for (const a of m.actions) {
    const extra = Object.entries(a.extra ?? {}) as [string, string][];
    xml += `     <action${attrs([
      ["event", a.event],
      ["sha256", a.sha256],
      ["needsadmin", a.needsAdmin],
      ["IsDelta", a.isDelta],
      ["DisablePayloadBackoff", a.disablePayloadBackoff],
      ["MetadataSize", a.metadataSize],
      ["MetadataSignatureRsa", a.metadataSignatureRsa],
      ["deadline", a.deadline],
      ...extra,
    ])}></action>\n`;
  }
  return `${xml}    </actions>\n   </manifest>\n`;
}

/**
 * Decode a response body. Throws OmahaDecodeError for malformed XML, DTDs/entities or a
 * missing required part; a client treats that like a failed check.
 */
export function decodeResponse(xml: string): OmahaResponse {
  const root = parseXml(xml);
  if (root.name !== "response") throw new OmahaDecodeError("root element is not <response>");
  const protocol = attr(root, "protocol");
  if (protocol !== "3.0") throw new OmahaDecodeError(`unsupported protocol "${protocol ?? ""}"`);
  const daystart = child(root, "daystart");
  const elapsedSeconds = daystart ? intAttr(daystart, "elapsed_seconds") : undefined;
  return {
    protocol: "3.0",
    server: attr(root, "server"),
    dayStart:
      daystart && elapsedSeconds !== undefined
        ? { elapsedSeconds, elapsedDays: intAttr(daystart, "elapsed_days") }
        : undefined,
    apps: children(root, "app").map(decodeApp),
  };
}

function decodeApp(node: XmlElement): ResponseApp {
  const appId = attr(node, "appid");
  if (!appId) throw new OmahaDecodeError("<app> without appid");
  const status = (attr(node, "status") ?? "ok") as AppStatus;
  const ping = child(node, "ping");
  const check = child(node, "updatecheck");
  return {
    appId,
    status,
    ping: ping ? { status: "ok" } : undefined,
    events: children(node, "event").map(() => ({ status: "ok" as const })),
    updateCheck: check ? decodeUpdateCheck(check) : undefined,
  };
}

function decodeUpdateCheck(node: XmlElement): ResponseUpdateCheck {
  const status = attr(node, "status") as UpdateCheckStatus | undefined;
  if (!status) throw new OmahaDecodeError("<updatecheck> without status");
  const urlsNode = child(node, "urls");
  const urls = urlsNode
    ? children(urlsNode, "url").map((u) => {
        const codebase = attr(u, "codebase");
        if (!codebase) throw new OmahaDecodeError("<url> without codebase");
        return codebase;
      })
    : [];
  const manifestNode = child(node, "manifest");
  const pollInterval = intAttr(node, "PollInterval");
  const uc: ResponseUpdateCheck = { status, urls };
  if (pollInterval !== undefined) uc.pollInterval = pollInterval;
  if (manifestNode) uc.manifest = decodeManifest(manifestNode);
  if (status === "ok" && (!uc.manifest || urls.length === 0)) {
    throw new OmahaDecodeError('<updatecheck status="ok"> without urls or manifest');
  }
  return uc;
}

const KNOWN_ACTION_ATTRS = new Set([
  "event",
  "sha256",
  "needsadmin",
  "IsDelta",
  "DisablePayloadBackoff",
  "MetadataSize",
  "MetadataSignatureRsa",
  "deadline",
]);

function decodeManifest(node: XmlElement): ResponseManifest {
  const version = attr(node, "version");
  if (!version) throw new OmahaDecodeError("<manifest> without version");
  const packagesNode = child(node, "packages");
  const actionsNode = child(node, "actions");
  const packages = (packagesNode ? children(packagesNode, "package") : []).map((p) => {
    const name = attr(p, "name");
    const size = intAttr(p, "size");
    if (!name) throw new OmahaDecodeError("<package> without name");
    if (size === undefined || size <= 0)
      throw new OmahaDecodeError(`<package name="${name}"> without a positive size`);
    return {
      name,
      hash: attr(p, "hash"),
      hashSha256: attr(p, "hash_sha256"),
      size,
      required: boolAttr(p, "required") ?? false,
    };
  });
  const actions = (actionsNode ? children(actionsNode, "action") : []).map((a): ResponseAction => {
    const event = attr(a, "event");
    if (
      event !== "preinstall" &&
      event !== "install" &&
      event !== "update" &&
      event !== "postinstall"
    ) {
      throw new OmahaDecodeError(`<action event="${event ?? ""}"> is not an Omaha action`);
    }
    const extra: Record<string, string> = {};
    for (const [name, v] of a.attrs) {
      if (!KNOWN_ACTION_ATTRS.has(name)) extra[name] = v;
    }
    const action: ResponseAction = {
      event,
      sha256: attr(a, "sha256"),
      needsAdmin: boolAttr(a, "needsadmin"),
      isDelta: boolAttr(a, "IsDelta"),
      disablePayloadBackoff: boolAttr(a, "DisablePayloadBackoff"),
      metadataSize: intAttr(a, "MetadataSize"),
      metadataSignatureRsa: attr(a, "MetadataSignatureRsa"),
      deadline: attr(a, "deadline"),
    };
    if (Object.keys(extra).length > 0) action.extra = extra;
    return action;
  });
  return { version, packages, actions };
}
