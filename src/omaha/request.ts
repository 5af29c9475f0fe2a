/** Omaha v3 request: encode (agent side) and decode (server side). */
import type { OmahaRequest, RequestApp, RequestEvent } from "./types.ts";
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

const MAX_APPS = 16;
const MAX_EVENTS_PER_APP = 32;

export function encodeRequest(req: OmahaRequest): string {
  let xml = `<?xml version="1.0" encoding="UTF-8"?>\n<request${attrs([
    ["protocol", "3.0"],
    ["version", req.version],
    ["updaterversion", req.updaterVersion],
    ["installsource", req.installSource],
    ["ismachine", req.isMachine === undefined ? undefined : req.isMachine ? "1" : "0"],
  ])}>\n`;
  if (req.os) {
    xml += ` <os${attrs([
      ["version", req.os.version],
      ["platform", req.os.platform],
      ["sp", req.os.sp],
      ["arch", req.os.arch],
    ])}></os>\n`;
  }
  for (const app of req.apps) xml += encodeApp(app);
  return `${xml}</request>\n`;
}

function encodeApp(app: RequestApp): string {
  let xml = ` <app${attrs([
    ["appid", app.appId],
    ["version", app.version],
    ["track", app.track],
    ["bootid", app.bootId],
    ["machineid", app.machineId],
    ["machinealias", app.machineAlias],
    ["oem", app.oem],
    ["oemversion", app.oemVersion],
    ["alephversion", app.alephVersion],
    ["board", app.board],
    ["lang", app.lang],
    ["delta_okay", app.deltaOkay],
  ])}>\n`;
  if (app.ping) xml += `  <ping${attrs([["active", app.ping.active]])}></ping>\n`;
  if (app.updateCheck) {
    xml += `  <updatecheck${attrs([["targetversionprefix", app.updateCheck.targetVersionPrefix]])}></updatecheck>\n`;
  }
  for (const ev of app.events) {
    xml += `  <event${attrs([
      ["eventtype", ev.type],
      ["eventresult", ev.result],
      ["errorcode", ev.errorCode],
      ["previousversion", ev.previousVersion],
    ])}></event>\n`;
  }
  return `${xml} </app>\n`;
}

/**
 * Decode a request body. Throws OmahaDecodeError for malformed XML, DTDs/entities, a wrong
 * root or protocol, or missing required attributes; the caller answers those with a 400.
 */
export function decodeRequest(xml: string): OmahaRequest {
  const root = parseXml(xml);
  if (root.name !== "request") throw new OmahaDecodeError("root element is not <request>");
  const protocol = attr(root, "protocol");
  if (protocol !== "3.0") throw new OmahaDecodeError(`unsupported protocol "${protocol ?? ""}"`);
  const appNodes = children(root, "app");
  if (appNodes.length > MAX_APPS) throw new OmahaDecodeError(`more than ${MAX_APPS} <app>`);
  const os = child(root, "os");
  const ismachine = attr(root, "ismachine");
  return {
    protocol: "3.0",
    version: attr(root, "version"),
    updaterVersion: attr(root, "updaterversion"),
    installSource: attr(root, "installsource"),
    isMachine: ismachine === undefined ? undefined : ismachine === "1" || ismachine === "true",
    os: os
      ? {
          version: attr(os, "version"),
          platform: attr(os, "platform"),
          sp: attr(os, "sp"),
          arch: attr(os, "arch"),
        }
      : undefined,
    apps: appNodes.map(decodeApp),
  };
}

function decodeApp(node: XmlElement): RequestApp {
  const appId = attr(node, "appid");
  if (!appId) throw new OmahaDecodeError("<app> without appid");
  const ping = child(node, "ping");
  const check = child(node, "updatecheck");
  const eventNodes = children(node, "event");
  if (eventNodes.length > MAX_EVENTS_PER_APP) {
    throw new OmahaDecodeError(`more than ${MAX_EVENTS_PER_APP} <event> in one <app>`);
  }
  return {
    appId,
    version: attr(node, "version"),
    track: attr(node, "track"),
    bootId: attr(node, "bootid"),
    machineId: attr(node, "machineid"),
    machineAlias: attr(node, "machinealias"),
    oem: attr(node, "oem"),
    oemVersion: attr(node, "oemversion"),
    alephVersion: attr(node, "alephversion"),
    board: attr(node, "board"),
    lang: attr(node, "lang"),
    deltaOkay: boolAttr(node, "delta_okay"),
    ping: ping ? { active: intAttr(ping, "active") } : undefined,
    updateCheck: check ? { targetVersionPrefix: attr(check, "targetversionprefix") } : undefined,
    events: eventNodes.map(decodeEvent),
  };
}

function decodeEvent(node: XmlElement): RequestEvent {
  const type = intAttr(node, "eventtype");
  const result = intAttr(node, "eventresult");
  if (type === undefined) throw new OmahaDecodeError("<event> without eventtype");
  return {
    type,
    // update_engine omits eventresult only for plain success.
    result: result ?? 1,
    errorCode: intAttr(node, "errorcode"),
    previousVersion: attr(node, "previousversion"),
  };
}
