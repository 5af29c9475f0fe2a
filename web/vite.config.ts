/**
 * Vite build of the dashboard: web/src → web/dist, which `slipway serve` serves at `/`.
 * Everything is bundled (the dashboard must work on machines without internet access).
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  base: "/",
  logLevel: "warn",
  oxc: { jsx: { runtime: "automatic" } },
  build: {
    outDir: fileURLToPath(new URL("dist", import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    // Small enough to stay one chunk; no CDN, no external fonts.
    chunkSizeWarningLimit: 1024,
  },
});
