// js/transport.js with a fake frontend api: while a queue request is under way, the events of a prompt not known yet
// and all after them wait and then reach every listener complete and in order; a live run's error reaches the rest
// of the frontend as execution_interrupted; a live prompt holds only what its targets need.
import assert from "node:assert/strict";
import { test } from "node:test";

import { LiveTransport, describeQueueError } from "../../js/transport.js";

/** The frontend's api as extensions see it: addEventListener, and dispatchCustomEvent, through which every server
 *  message reaches the listeners. `answer` resolves the next queuePrompt (a test decides when). */
class FakeApi extends EventTarget {
    constructor() {
        super();
        this.requests = [];
    }

    dispatchCustomEvent(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }

    queuePrompt(number, data, options) {
        return new Promise((resolve) => this.requests.push({ data, options, answer: resolve }));
    }

    fetchApi() { return Promise.resolve({}); }
}

function listen() {
    const api = new FakeApi();
    const ours = new Set();
    const seen = { live: [], other: [] };
    const transport = new LiveTransport(api, {
        isOurs: (id) => ours.has(id),
        onStart: (id) => seen.live.push(`start ${id}`),
        onProgress: (id, { node }) => seen.live.push(`progress ${id} ${node}`),
        onFinished: (id, kind) => seen.live.push(`${kind} ${id}`),
        onFrame: (meta) => seen.live.push(`frame ${meta.prompt_id}`),
    });
    assert.equal(transport.listen(), true);
    // another extension, listening to everything the way rgthree-comfy does
    for (const type of ["execution_start", "executing", "progress_state", "execution_error", "execution_interrupted",
                        "execution_success", "b_preview"]) {
        api.addEventListener(type, ({ detail }) => seen.other.push(`${type} ${detail?.prompt_id ?? ""}`.trim()));
    }
    return { api, ours, seen, transport };
}

test("events that come before the queue request's answer wait, then every listener gets all of them in order", async () => {
    const { api, ours, seen, transport } = listen();
    const queued = transport.queue({ 8: { inputs: {} } }, {}, ["8"], (id) => ours.add(id));
    api.dispatchCustomEvent("status", { exec_info: {} });                       // nothing held yet: goes on
    api.dispatchCustomEvent("execution_start", { prompt_id: "p1" });            // not known yet: held
    api.dispatchCustomEvent("progress_state", { prompt_id: "p1" });
    api.dispatchCustomEvent("executing", { node: "8", prompt_id: "p1" });
    api.dispatchCustomEvent("lcm_kit.live_frame", { prompt_id: "p1", node: "8", frame: 1 });
    api.dispatchCustomEvent("b_preview", new Blob());                           // no prompt id, still after them
    assert.deepEqual(seen.other, []);
    api.requests[0].answer({ prompt_id: "p1" });
    assert.equal(await queued, "p1");
    assert.deepEqual(seen.other, ["execution_start p1", "progress_state p1", "executing p1", "b_preview"]);
    assert.deepEqual(seen.live, ["start p1", "progress p1 8", "frame p1"]);
});

test("a live run's error goes to live mode; the rest of the frontend sees it interrupted, a normal Run's as it is", async () => {
    const { api, ours, seen, transport } = listen();
    const queued = transport.queue({}, {}, ["8"], (id) => ours.add(id));
    api.requests[0].answer({ prompt_id: "p1" });
    await queued;
    api.dispatchCustomEvent("execution_error", { prompt_id: "p1", node_id: "2", exception_message: "for SDXL" });
    api.dispatchCustomEvent("execution_error", { prompt_id: "run", node_id: "2", exception_message: "for SDXL" });
    assert.deepEqual(seen.other, ["execution_interrupted p1", "execution_error run"]);
    assert.deepEqual(seen.live, ["error p1", "interrupted p1"]);   // (LiveMode ends a prompt once: the error)
});

test("a live prompt holds only what its Live Preview needs, and names its targets for partial execution", async () => {
    const { api, ours, transport } = listen();
    const output = { 1: { inputs: {} }, 7: { inputs: { vae: ["1", 2] } }, 8: { inputs: { images: ["7", 0] } },
                     9: { class_type: "SaveImage", inputs: { images: ["7", 0] } } };
    const queued = transport.queue(output, { nodes: [] }, ["8"], (id) => ours.add(id));
    const request = api.requests[0];
    assert.deepEqual(Object.keys(request.data.output).sort(), ["1", "7", "8"]);
    assert.deepEqual(request.options, { partialExecutionTargets: ["8"] });
    request.answer({ prompt_id: "p1" });
    await queued;
});

test("a refused prompt's text names each node and its problem once", () => {
    const body = { node_errors: { 6: { class_type: "LCMKitSampler", errors: [
        { message: "Custom validation failed", details: "strength 0.02 keeps no step of 4: raise strength" },
        { message: "Custom validation failed", details: "strength 0.02 keeps no step of 4: raise strength" }] } } };
    assert.equal(describeQueueError(body, (type) => `${type}!`),
                 "LCMKitSampler! #6: strength 0.02 keeps no step of 4: raise strength");
});
