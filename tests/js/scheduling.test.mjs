// The scheduler's rules (js/scheduling.js) with a fake clock and a fake transport: debounce, the unchanged prompt,
// withdraw, interrupt-if-idle, streams, errors, frames and the readout's numbers.
import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_DEBOUNCE_MS, LiveMode } from "../../js/scheduling.js";
import { FakeClock, FakeTransport, fakeBitmap, fakeGraph, frameMeta, settle } from "./fakes.mjs";

function setup({ debounce = DEFAULT_DEBOUNCE_MS } = {}) {
    const clock = new FakeClock();
    const transport = new FakeTransport();
    const graph = fakeGraph();
    const live = new LiveMode({ graph, transport, clock, debounceMs: () => debounce, decode: fakeBitmap,
                                displayName: (type) => `${type} (shown)` });
    const edits = live.source();
    return { clock, transport, graph, live, edits };
}

// Live on and its first prompt queued, started and shown (run `runMs` long on the server).
async function started({ runMs = 1000, ...options } = {}) {
    const s = setup(options);
    s.live.setLive(true);
    await s.clock.advance(DEFAULT_DEBOUNCE_MS);
    assert.equal(s.transport.queued.length, 1);
    await run(s, "p1", runMs);
    return s;
}

// The server runs `id`: starts now, sends its frame `runMs` later, ends.
async function run(s, id, runMs) {
    const serverStart = 5_000_000 + s.clock.now();
    s.live.onStart(id, serverStart);
    await s.clock.advance(runMs);
    await s.live.onFrame(frameMeta(id, frameNumber++, serverStart + runMs), new Blob());
    s.live.onFinished(id, "success", { prompt_id: id });
    await settle();
}
let frameNumber = 1;

test("an edit is queued once its debounce has passed, and a burst of edits once, with its last state", async () => {
    const { clock, transport, graph, live, edits } = setup();
    live.setLive(true);                                 // the graph as it is, after the debounce
    for (const text of ["a fox i", "a fox in", "a fox in the"]) {
        await clock.advance(100);                       // shorter than the debounce: no queuing yet
        graph.text = text;
        edits.changed();
    }
    assert.equal(transport.queued.length, 0);
    await clock.advance(DEFAULT_DEBOUNCE_MS - 1);
    assert.equal(transport.queued.length, 0);
    await clock.advance(1);
    assert.equal(transport.queued.length, 1);
    assert.equal(transport.queued[0].output[3].inputs.text, "a fox in the");
    assert.deepEqual(transport.queued[0].targets, ["8"]);
    assert.equal(live.latest, "p1");
});

test("an event that changed nothing the prompt holds queues nothing", async () => {
    const { clock, transport, live, edits } = await started();
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    assert.equal(transport.queued.length, 1);
    assert.equal(live.stats.unchanged, 1);
});

test("no timer runs while nobody edits (nothing polls the graph)", async () => {
    const { clock, live } = await started();
    await clock.advance(10_000);
    assert.equal(clock.timers.size, 0);
    let prompts = 0;
    live.graph.prompt = async () => { prompts++; return { output: {}, workflow: {} }; };
    await clock.advance(60_000);
    assert.equal(prompts, 0);
});

test("a prompt still waiting in the queue is withdrawn when a newer graph is queued, not interrupted", async () => {
    const { clock, transport, graph, live, edits } = await started();
    graph.text = "one";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);          // p2 queued, the server has not started it
    graph.text = "two";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);          // p3 replaces it
    assert.deepEqual(transport.queued.map((q) => q.id), ["p1", "p2", "p3"]);
    assert.deepEqual(transport.withdrawn, ["p2"]);
    assert.deepEqual(transport.interrupted, []);
    assert.deepEqual([...live.inflight], ["p3"]);
});

test("once the edits stop, a stale run in the first half of its expected time is interrupted", async () => {
    const { clock, transport, graph, live, edits } = await started({ runMs: 1000 });
    graph.text = "one";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    live.onStart("p2", null);                           // p2 runs
    await clock.advance(300);
    graph.text = "two";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);           // p3 waits behind it; p2 is kept while edits may go on
    assert.deepEqual(transport.interrupted, []);
    assert.equal(live.stats.kept, 1);
    await clock.advance(400);                           // no edit for PAUSE_MS: p2 is 700 ms into a 1000 ms run
    assert.deepEqual(transport.interrupted, []);        // past half its run: its frame comes sooner, it finishes
    graph.text = "three";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);           // p4 queued; p3 withdrawn
    live.onFinished("p2", "success", {});
    live.onStart("p4", null);
    graph.text = "four";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);           // p5 queued behind p4 (150 ms into its run)
    await clock.advance(250);                           // no edit for PAUSE_MS: p4 is 400 ms into its run
    assert.deepEqual(transport.interrupted, ["p4"]);
    assert.equal(live.stats.interrupted, 1);
});

test("while a source streams, no run is cut short, and it is asked for its next change when the server can take one", async () => {
    const { clock, transport, graph, live } = await started({ runMs: 300 });
    const asked = [];
    const sent = [];
    const camera = live.source({ next: (info) => asked.push(info), sent: ({ promptId }) => sent.push(promptId) });
    camera.streaming(true);
    assert.equal(asked.length, 1);                      // nothing of ours waits: the first frame now
    assert.equal(asked[0].expectedRunMs, 300);
    graph.text = "frame 1";
    camera.changed();
    camera.changed();                                   // a change waiting for its debounce: not asked again
    assert.equal(asked.length, 1);
    await clock.advance(DEFAULT_DEBOUNCE_MS);           // queued: p2 waits in the queue (not started)
    assert.deepEqual(sent, ["p2"]);
    assert.equal(asked.length, 1);
    live.onStart("p2", null);                           // it runs: nothing waits, the next frame may come
    assert.equal(asked.length, 2);
    graph.text = "frame 2";
    camera.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    await clock.advance(1000);                          // edits stopped, p2 early in its run: kept (a stream)
    assert.deepEqual(transport.interrupted, []);
    camera.streaming(false);
});

test("a frame of a stream's change reads 'after capture', of an edit 'after your edit'", async () => {
    const { clock, graph, live, edits } = await started({ runMs: 200 });
    assert.equal(live.viewState("8").latencyFrom, "edit");
    const camera = live.source({ next() {} });
    camera.streaming(true);
    graph.text = "captured";
    camera.changed(clock.now() - 30);                   // captured 30 ms ago
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    await run({ clock, live }, "p2", 200);
    const state = live.viewState("8");
    assert.equal(state.latencyFrom, "capture");
    assert.equal(state.latencyMs, 30 + DEFAULT_DEBOUNCE_MS + 200);
    camera.streaming(false);
    graph.text = "typed";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    await run({ clock, live }, "p3", 200);
    assert.equal(live.viewState("8").latencyFrom, "edit");
});

test("latency counts from the edit, compute from the server's run; frames of older prompts are dropped", async () => {
    const { clock, graph, live, edits } = await started({ runMs: 500 });
    assert.equal(live.computeMs, 500);
    graph.text = "one";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    graph.text = "two";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);           // p2 withdrawn too late: the server had started it
    live.onStart("p2", null);
    live.onStart("p3", null);
    await live.onFrame(frameMeta("p3", 100), new Blob());
    await live.onFrame(frameMeta("p2", 99), new Blob());   // older prompt, after the newer frame: dropped
    assert.equal(live.frames.get("8").meta.prompt_id, "p3");
    assert.equal(live.stats.dropped, 1);
});

test("a prompt the server refuses shows its error; the next edit that runs clears it", async () => {
    const { clock, transport, graph, live, edits } = await started();
    transport.refuse = "LCM Sampler #6: steps cannot exceed original_inference_steps";
    graph.text = "bad";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    assert.equal(live.error, "LCM Sampler #6: steps cannot exceed original_inference_steps");
    assert.equal(live.stats.rejected, 1);
    assert.equal(live.latest, null);
    assert.equal(live.on, true);
    graph.text = "good";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    await run({ clock, live }, "p2", 100);
    assert.equal(live.error, null);
});

test("a failed run's error names the node as the user sees it and live mode goes on", async () => {
    const { clock, transport, graph, live, edits } = await started();
    graph.text = "fails";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    live.onStart("p2", null);
    live.onFinished("p2", "error", { node_type: "LCMKitLoraLoader", node_id: "2", exception_message: "for SDXL" });
    assert.equal(live.error, "LCMKitLoraLoader (shown) #2: for SDXL");
    assert.deepEqual(transport.forgotten, ["p1", "p2"]);   // live runs are drafts: out of the history
    assert.deepEqual([...live.inflight], []);
    graph.text = "works";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    assert.equal(transport.queued.length, 3);
});

test("switching live off withdraws and interrupts ours, stops streams and queues nothing more", async () => {
    const { clock, transport, graph, live, edits } = await started();
    let stopped = 0;
    live.source({ stopped: () => stopped++ });
    graph.text = "one";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    live.setLive(false);
    await settle();
    assert.deepEqual(transport.withdrawn, ["p2"]);
    assert.deepEqual(transport.interrupted, ["p2"]);
    assert.equal(stopped, 1);
    graph.text = "two";
    edits.changed();
    await clock.advance(1000);
    assert.equal(transport.queued.length, 2);
});

test("while edits go on without a pause, the next prompt is queued a debounce after the first (max wait)", async () => {
    const { clock, transport, graph, edits } = await started({ runMs: 1000 });
    for (let i = 0; i < 3; i++) {                        // a keystroke every 100 ms: the debounce never passes
        graph.text = `typing ${i}`;
        edits.changed();
        await clock.advance(100);
    }
    assert.equal(transport.queued.length, 2);           // queued 150 ms after the first keystroke
    assert.equal(transport.queued[1].output[3].inputs.text, "typing 1");
});

test("progress of a run shows while the view waits for its frame, and goes with the run", async () => {
    const { live } = setup();
    live.onProgress("r1", { node: "6" });
    live.onProgress("r1", { node: "6", value: 2, max: 4 });
    assert.deepEqual(live.viewState("8").progress && { node: live.viewState("8").progress.node, value: 2, max: 4 },
                     { node: "Node #6", value: 2, max: 4 });
    live.onFinished("r1", "success", {});
    assert.equal(live.viewState("8").progress, null);
});

test("live off, a normal Run's frame is shown; live on, frames not of live mode are not", async () => {
    const { live } = setup();
    await live.onFrame(frameMeta("run-1", 500), new Blob());
    assert.equal(live.viewState("8").frame.meta.prompt_id, "run-1");
    assert.equal(live.viewState("8").latencyFrom, "run");
    live.setLive(true);
    await live.onFrame(frameMeta("run-2", 501), new Blob());
    assert.equal(live.viewState("8").frame.meta.prompt_id, "run-1");
});

test("a live run's progress shows only before the first frame or once the run takes over a second", async () => {
    const { clock, graph, live, edits } = await started({ runMs: 100 });
    graph.text = "slow";
    edits.changed();
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    live.onStart("p2", null);
    live.onProgress("p2", { node: "6", value: 1, max: 2 });
    assert.equal(live.viewState("8").progress, null);     // a frame is shown: a fast run's progress would flicker
    await clock.advance(1000);
    assert.equal(live.viewState("8").progress.node, "Node #6");
});
