/**
 * Omaha v3 codec shared by `slipway serve` and the host agent: typed messages and their XML
 * form, nothing about HTTP. Runs on Node 20 (the images' Node) as well as Node 24.
 */
export { decodeRequest, encodeRequest } from "./request.ts";
export { decodeResponse, encodeResponse } from "./response.ts";
export * from "./types.ts";
export { MAX_XML_BYTES, OmahaDecodeError } from "./xml.ts";
