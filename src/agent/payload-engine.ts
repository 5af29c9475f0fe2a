/**
 * The production PayloadEngine: the adapter onto src/payload (the payload
 * engineer's streaming apply library). Until that library is wired in, the
 * agent refuses to install rather than guess at the format.
 */
import { SlipwayError } from "../errors.ts";
import type { PayloadEngine } from "./payload-port.ts";

export function defaultPayloadEngine(): PayloadEngine {
  const missing = () =>
    Promise.reject(new SlipwayError("this build has no payload engine (src/payload not wired in)"));
  return { verify: missing, apply: missing };
}
