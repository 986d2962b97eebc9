// The readouts (js/readout.js): fps over the last seconds of activity, never over idle time; the readout line.
import assert from "node:assert/strict";
import { test } from "node:test";

import { FrameRate, formatDuration, readoutText } from "../../js/readout.js";

test("fps counts only time with a prompt in flight: an idle pause does not lower it", () => {
    const rate = new FrameRate(5000);
    rate.setBusy(true, 0);
    for (const t of [200, 400, 600, 800]) rate.frame(t);      // 5 fps while busy
    rate.setBusy(false, 800);
    assert.equal(rate.fps(800), 5);
    assert.equal(rate.fps(60_000), 5);                          // a minute idle later: still 5
    rate.setBusy(true, 60_000);
    rate.frame(60_200);
    assert.equal(rate.fps(60_200), 5);                          // the idle minute is not between the frames
});

test("fps is over the last few seconds of activity, and over the last two frames on a slow machine", () => {
    const rate = new FrameRate(5000);
    rate.setBusy(true, 0);
    for (let t = 100; t <= 3000; t += 100) rate.frame(t);      // 10 fps for 3 s
    for (let t = 3500; t <= 10_000; t += 500) rate.frame(t);   // then 2 fps
    assert.equal(rate.fps(10_000), 2);                          // the older, faster frames are out of the window
    const slow = new FrameRate(5000);
    slow.setBusy(true, 0);
    slow.frame(26_000);
    assert.equal(slow.fps(26_000), null);                      // one frame: no rate yet
    slow.frame(52_000);
    assert.equal(slow.fps(52_000).toFixed(3), (1 / 26).toFixed(3));
});

test("the readout says where the latency counts from: your edit, the camera's capture, a normal Run", () => {
    const base = { on: true, fps: 2.5, latencyMs: 320, computeMs: 250, hasFrame: true };
    assert.equal(readoutText(base), "● live · 2.5 fps · frame 320 ms after your edit (run 250 ms)");
    assert.equal(readoutText({ ...base, latencyFrom: "capture" }),
                 "● live · 2.5 fps · frame 320 ms after capture (run 250 ms)");
    assert.equal(readoutText({ ...base, fps: 0.04, latencyMs: 26_400 }),
                 "● live · 0.04 fps · frame 26 s after your edit (run 250 ms)");
    assert.equal(readoutText({ ...base, on: false }), "live off · switch live on and the image follows your edits");
});

test("while it waits for a frame, the readout shows the run's progress", () => {
    const progress = { node: "LCM Sampler (LCM Kit) #6", value: 2, max: 4 };
    assert.equal(readoutText({ on: true, hasFrame: false, progress }),
                 "● live · waiting for the first frame · running: step 2 of 4 · LCM Sampler (LCM Kit) #6");
    assert.equal(readoutText({ on: false, hasFrame: false, progress: { node: "VAE Decode #7" } }),
                 "running: VAE Decode #7 · live off · switch live on and the image follows your edits");
});

test("durations read as a user reads them", () => {
    assert.deepEqual([850, 1234, 12_345, null].map(formatDuration), ["850 ms", "1.2 s", "12 s", "–"]);
});
