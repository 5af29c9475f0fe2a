/** Every command group the CLI knows, in the order `slipway --help` lists them. */
import type { Command } from "commander";
import { register as agent } from "./agent.ts";
import { register as build } from "./build.ts";
import { register as config } from "./config.ts";
import { register as convert } from "./convert.ts";
import { register as gpt } from "./gpt.ts";
import { register as init } from "./init.ts";
import { register as lock } from "./lock.ts";
import { register as payload } from "./payload.ts";
import { register as publish } from "./publish.ts";
import { register as run } from "./run.ts";
import { register as serve } from "./serve.ts";
import { register as simulate } from "./simulate.ts";
import { register as test } from "./test.ts";
import { register as update } from "./update.ts";

export type RegisterCommands = (program: Command) => void;

export const commandGroups: RegisterCommands[] = [
  init,
  build,
  convert,
  run,
  test,
  config,
  gpt,
  agent,
  update,
  payload,
  lock,
  serve,
  publish,
  simulate,
];
