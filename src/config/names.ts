/** File names the CLI needs at start-up, kept free of imports so help stays fast. */
export const DEFAULT_CONFIG_NAME = "slipway.yaml";
