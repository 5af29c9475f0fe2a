import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeRequest,
  decodeResponse,
  ErrorCode,
  EventResult,
  EventType,
  encodeRequest,
  encodeResponse,
  OmahaDecodeError,
  type OmahaRequest,
  type OmahaResponse,
} from "../../src/omaha/index.ts";

/** A request as Flatcar's update_engine sends it: ping + update check, first boot after update. */
const UPDATE_ENGINE_REQUEST = `<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
    <os version="Chateau" platform="CoreOS" sp="3815.2.0_x86_64"></os>
    <app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="3815.2.0" track="stable" bootid="{b1a2c3}" oem="qemu" oemversion="0.1" alephversion="3760.2.0" machineid="6f0e2e1bb7a14b3fa2f4e5d0a8a2c1d0" machinealias="" lang="en-US" board="amd64-usr" hardware_class="" delta_okay="false" >
        <ping active="1"></ping>
        <updatecheck></updatecheck>
        <event eventtype="3" eventresult="2" previousversion="3760.2.0"></event>
    </app>
</request>
`;

test("decodes an update_engine request with ping, update check and a reboot event", () => {
  const req = decodeRequest(UPDATE_ENGINE_REQUEST);
  assert.equal(req.installSource, "scheduler");
  assert.equal(req.isMachine, true);
  assert.equal(req.os?.platform, "CoreOS");
  const app = req.apps[0]!;
  assert.equal(app.appId, "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}");
  assert.equal(app.version, "3815.2.0");
  assert.equal(app.track, "stable");
  assert.equal(app.machineId, "6f0e2e1bb7a14b3fa2f4e5d0a8a2c1d0");
  assert.equal(app.deltaOkay, false);
  assert.deepEqual(app.ping, { active: 1 });
  assert.deepEqual(app.updateCheck, { targetVersionPrefix: undefined });
  assert.deepEqual(app.events, [
    {
      type: EventType.UpdateComplete,
      result: EventResult.SuccessReboot,
      errorCode: undefined,
      previousVersion: "3760.2.0",
    },
  ]);
});

test("request round-trips through encode/decode, including characters that need escaping", () => {
  const req: OmahaRequest = {
    protocol: "3.0",
    version: "slipway-agent-0.1.0",
    installSource: "ondemandupdate",
    isMachine: true,
    os: { platform: "Slipway", version: "trixie" },
    apps: [
      {
        appId: "app<&>\"'",
        version: "1.2.3",
        track: "beta",
        machineId: "m1",
        machineAlias: "rack 4 / \u00e9",
        deltaOkay: true,
        events: [
          {
            type: EventType.UpdateComplete,
            result: EventResult.Error,
            errorCode: ErrorCode.Rollback,
          },
        ],
      },
    ],
  };
  const back = decodeRequest(encodeRequest(req));
  assert.equal(back.apps[0]!.appId, "app<&>\"'");
  assert.equal(back.apps[0]!.machineAlias, "rack 4 / \u00e9");
  assert.equal(back.apps[0]!.deltaOkay, true);
  assert.equal(back.apps[0]!.ping, undefined);
  assert.equal(back.apps[0]!.updateCheck, undefined);
  assert.deepEqual(back.apps[0]!.events[0], {
    type: 3,
    result: 0,
    errorCode: ErrorCode.Rollback,
    previousVersion: undefined,
  });
});

test("response with an update round-trips and carries what update_engine checks", () => {
  const res: OmahaResponse = {
    protocol: "3.0",
    server: "slipway",
    dayStart: { elapsedSeconds: 49008, elapsedDays: 7000 },
    apps: [
      {
        appId: "a",
        status: "ok",
        ping: { status: "ok" },
        events: [{ status: "ok" }],
        updateCheck: {
          status: "ok",
          pollInterval: 3600,
          urls: ["https://u.example/packages/a/1.2.4/"],
          manifest: {
            version: "1.2.4",
            packages: [
              { name: "update.gz", hash: "sha1", hashSha256: "ab", size: 1234, required: true },
            ],
            actions: [
              {
                event: "postinstall",
                sha256: "q83vEjRWeJA=",
                needsAdmin: false,
                isDelta: false,
                disablePayloadBackoff: true,
                extra: { ChromeOSVersion: "" },
              },
            ],
          },
        },
      },
    ],
  };
  const xml = encodeResponse(res);
  assert.match(xml, /<url codebase="https:\/\/u.example\/packages\/a\/1.2.4\/">/);
  assert.match(
    xml,
    /<package name="update.gz" hash="sha1" hash_sha256="ab" size="1234" required="true">/,
  );
  assert.match(xml, /<action event="postinstall" sha256="q83vEjRWeJA="/);
  assert.match(xml, /<updatecheck status="ok" PollInterval="3600">/);
  const back = decodeResponse(xml);
  assert.deepEqual(JSON.parse(JSON.stringify(back)), res);
});

test("noupdate and error statuses decode", () => {
  const xml = `<response protocol="3.0"><daystart elapsed_seconds="1"/><app appid="x" status="error-unknownApplication"></app><app appid="y" status="ok"><updatecheck status="noupdate"/></app></response>`;
  const res = decodeResponse(xml);
  assert.equal(res.apps[0]!.status, "error-unknownApplication");
  assert.equal(res.apps[1]!.updateCheck?.status, "noupdate");
  assert.deepEqual(res.apps[1]!.updateCheck?.urls, []);
});

test("an ok updatecheck without a manifest, or a package without size, is refused", () => {
  assert.throws(
    () =>
      decodeResponse(
        `<response protocol="3.0"><app appid="x" status="ok"><updatecheck status="ok"/></app></response>`,
      ),
    OmahaDecodeError,
  );
  assert.throws(
    () =>
      decodeResponse(
        `<response protocol="3.0"><app appid="x"><updatecheck status="ok"><urls><url codebase="http://h/"/></urls><manifest version="2"><packages><package name="p" size="0"/></packages></manifest></updatecheck></app></response>`,
      ),
    /positive size/,
  );
});

test("hostile or broken bodies throw OmahaDecodeError", () => {
  const bodies = [
    `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><request protocol="3.0"><app appid="&x;"/></request>`,
    `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><request protocol="3.0"><app appid="&lol2;"/></request>`,
    `<request protocol="3.0"><app appid="&lol;"/></request>`,
    `<request protocol="2.0"><app appid="a"/></request>`,
    `<notrequest protocol="3.0"/>`,
    `<request protocol="3.0"><app appid="a"><event eventtype="x"/></app></request>`,
    `<request protocol="3.0"><app version="1"/></request>`,
    `<request protocol="3.0"><app appid="a">`,
    "",
    `<request protocol="3.0">${"<app appid='a'/>".repeat(100)}</request>`,
    `<request protocol="3.0"><app appid="${"a".repeat(300_000)}"/></request>`,
    `<request protocol="3.0"><app appid="a"></request></app>`,
    `<request protocol="3.0"/><request protocol="3.0"/>`,
    `text<request protocol="3.0"/>`,
    `<request protocol=3.0/>`,
    `<request protocol="3.0" protocol="3.0"/>`,
    `<request protocol="3.0"x="1"/>`,
    `<request protocol="3.0"><![CDATA[x]]></request>`,
    `<request protocol="3.0">${"<a>".repeat(40)}${"</a>".repeat(40)}</request>`,
    `<request protocol="3.0"><app appid="a<b"/></request>`,
    `<request protocol="3.0">&bogus;</request>`,
  ];
  for (const body of bodies) {
    assert.throws(() => decodeRequest(body), OmahaDecodeError, body.slice(0, 80));
  }
});

test("comments, processing instructions and whitespace are fine; newlines in values survive via references", () => {
  const req = decodeRequest(
    `\ufeff<?xml version="1.0"?>\n<!-- hi -->\n<request protocol='3.0'><?pi x?><app appid="a&#10;b" machinealias="x\ny"><!-- c --></app></request>\n<!-- end -->\n`,
  );
  assert.equal(req.apps[0]!.appId, "a\nb");
  assert.equal(req.apps[0]!.machineAlias, "x y");
  const round = decodeRequest(
    encodeRequest({ protocol: "3.0", apps: [{ appId: "t\tn\nr\r", events: [] }] }),
  );
  assert.equal(round.apps[0]!.appId, "t\tn\nr\r");
});

test("10,000 mutated bodies either decode or throw OmahaDecodeError, nothing else", () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = `<>/="'&;! ?abc0-9\n[]#x`;
  let decoded = 0;
  for (let i = 0; i < 10_000; i++) {
    const chars = UPDATE_ENGINE_REQUEST.split("");
    const edits = 1 + rand(6);
    for (let e = 0; e < edits; e++) {
      const pos = rand(chars.length);
      const op = rand(3);
      if (op === 0) chars.splice(pos, 1);
      else if (op === 1) chars.splice(pos, 0, alphabet[rand(alphabet.length)]!);
      else chars[pos] = alphabet[rand(alphabet.length)]!;
    }
    try {
      decodeRequest(chars.join(""));
      decoded++;
    } catch (err) {
      assert.ok(err instanceof OmahaDecodeError, `iteration ${i}: ${String(err)}`);
    }
  }
  assert.ok(decoded > 0, "some mutations (e.g. in attribute values) still decode");
});
