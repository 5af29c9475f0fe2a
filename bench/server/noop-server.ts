/**
 * The bench's baseline: the same HTTP framework (fastify) with the same body handling,
 * answering every Omaha POST with a constant "noupdate" and touching nothing else.
 * Run as a child process: `node bench/server/noop-server.ts <port>`.
 */
import Fastify from "fastify";

const RESPONSE = `<?xml version="1.0" encoding="UTF-8"?>
<response protocol="3.0" server="noop">
 <daystart elapsed_seconds="0" elapsed_days="0"></daystart>
 <app appid="bench" status="ok">
  <ping status="ok"></ping>
  <updatecheck status="noupdate"></updatecheck>
 </app>
</response>
`;

const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser("*", { parseAs: "string", bodyLimit: 256 * 1024 }, (_req, body, done) =>
  done(null, body),
);
app.post("/v1/update/", async (_req, reply) => {
  reply.type("text/xml; charset=utf-8");
  return RESPONSE;
});
app.get("/health", async () => ({ status: "ok" }));
await app.listen({ host: "127.0.0.1", port: Number(process.argv[2] ?? 0) });
