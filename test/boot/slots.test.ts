import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeGrubEnv, parseGrubEnv } from "../../src/boot/grubenv.ts";
import {
  bootStateFromEnv,
  bootStateToEnv,
  initialBootState,
  markBad,
  markGood,
  parseSlotName,
  selectBootSlot,
  setPrimary,
  simulateBootAttempt,
} from "../../src/boot/slots.ts";
import { InputError } from "../../src/errors.ts";

test("initial state boots A; B is empty", () => {
  const s = initialBootState();
  assert.deepEqual(s.A, { priority: 1, tries: 0, successful: 1 });
  assert.deepEqual(s.B, { priority: 0, tries: 0, successful: 0 });
  assert.equal(selectBootSlot(s), "A");
});

test("state round-trips through grubenv bytes and keeps other keys", () => {
  const s = setPrimary(initialBootState(), "B", { tries: 3 });
  const env = bootStateToEnv(s, new Map([["other", "kept"]]));
  const back = parseGrubEnv(encodeGrubEnv(env));
  assert.equal(back.get("other"), "kept");
  assert.equal(back.get("usr_b_tries"), "3");
  assert.deepEqual(bootStateFromEnv(back), s);
});

test("missing keys read as 0, bad values are rejected", () => {
  assert.deepEqual(bootStateFromEnv(new Map()).A, { priority: 0, tries: 0, successful: 0 });
  assert.throws(() => bootStateFromEnv(new Map([["usr_a_priority", "x"]])), InputError);
  assert.throws(() => bootStateFromEnv(new Map([["usr_a_tries", "16"]])), /0–15/);
  assert.throws(() => bootStateFromEnv(new Map([["usr_b_successful", "2"]])), /0–1/);
});

test("update flow: try B once, fall back to A when B never marks good", () => {
  let s = setPrimary(initialBootState(), "B", { tries: 1 });
  assert.deepEqual(s.B, { priority: 2, tries: 1, successful: 0 });
  let r = simulateBootAttempt(s);
  assert.equal(r.slot, "B");
  s = r.next;
  assert.equal(s.B.tries, 0);
  r = simulateBootAttempt(s); // B crashed before markGood
  assert.equal(r.slot, "A");
});

test("update flow: B marks good and stays, A becomes the fallback", () => {
  let s = simulateBootAttempt(setPrimary(initialBootState(), "B", { tries: 2 })).next;
  s = markGood(s, "B");
  assert.deepEqual(s.B, { priority: 2, tries: 0, successful: 1 });
  assert.equal(simulateBootAttempt(s).slot, "B");
  assert.equal(simulateBootAttempt(s).next.B.tries, 0);
  // the next update goes back to A, above B
  s = setPrimary(s, "A");
  assert.equal(selectBootSlot(s), "A");
  assert.ok(s.A.priority > s.B.priority);
});

test("markBad removes a slot from selection; nothing bootable gives undefined", () => {
  const s = markBad(initialBootState(), "A");
  assert.equal(selectBootSlot(s), undefined);
  assert.throws(() => setPrimary(s, "B", { tries: 0 }), /at least one try/);
  assert.throws(() => setPrimary(s, "B", { tries: 16 }), /0–15/);
});

test("priorities never pass 15", () => {
  let s = initialBootState();
  for (let i = 0; i < 40; i++) s = markGood(setPrimary(s, i % 2 ? "A" : "B"), i % 2 ? "A" : "B");
  assert.ok(s.A.priority <= 15 && s.B.priority <= 15);
  assert.equal(selectBootSlot(s), "A");
});

test("slot names", () => {
  assert.equal(parseSlotName("usr-b"), "B");
  assert.equal(parseSlotName("A"), "A");
  assert.throws(() => parseSlotName("C"), InputError);
});
