// js/compat.js: what a live prompt holds (promptUpTo), and the callbacks through which live mode hears of edits.
import assert from "node:assert/strict";
import { test } from "node:test";

import { modeChangesAreEvents, nodeByExecutionId, promptUpTo, watchGraph, watchNode } from "../../js/compat.js";

test("a live prompt holds the targets and what they need, nothing else (a Save Image is left out)", () => {
    const output = {
        1: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "x" } },
        3: { class_type: "CLIPTextEncode", inputs: { text: "a fox", clip: ["1", 1] } },
        6: { class_type: "LCMKitSampler", inputs: { model: ["1", 0], positive: ["3", 0], size: [512, 512] } },
        7: { class_type: "VAEDecode", inputs: { samples: ["6", 0], vae: ["1", 2] } },
        "12:8": { class_type: "LCMKitLivePreview", inputs: { images: ["7", 0] } },
        9: { class_type: "SaveImage", inputs: { images: ["7", 0] } },
    };
    assert.deepEqual(Object.keys(promptUpTo(output, ["12:8"])).sort(), ["1", "12:8", "3", "6", "7"]);
    assert.deepEqual(promptUpTo(output, ["missing"]), {});
});

test("watchNode hears widget changes, links and add/remove, and keeps what was there", () => {
    const calls = [];
    const widget = { name: "text", callback: (v) => calls.push(`own ${v}`) };
    const node = { widgets: [widget], onAdded: () => calls.push("own added") };
    let edits = 0;
    watchNode(node, () => edits++);
    watchNode(node, () => edits++);                      // once per node
    widget.callback("a");
    node.onAdded({});
    node.onConnectionsChange(1, 0, true);
    node.onWidgetChanged("text", "b", "a", widget);
    node.onRemoved();
    assert.deepEqual(calls, ["own a", "own added"]);
    assert.equal(edits, 5);
});

test("watchGraph hears mode and link changes through the graph's trigger, not other properties", () => {
    const graph = { trigger(type, e) { this.onTrigger?.({ type, ...e }); } };
    let edits = 0;
    assert.equal(watchGraph(graph, () => edits++), true);
    graph.trigger("node:property:changed", { property: "mode", nodeId: 1 });
    graph.trigger("node:property:changed", { property: "color", nodeId: 1 });
    graph.trigger("node:slot-links:changed", { nodeId: 1 });
    assert.equal(edits, 2);
    graph.onTrigger = () => {};                           // the frontend put its own in: watched again
    assert.equal(watchGraph(graph, () => edits++), true);
    graph.trigger("node:property:changed", { property: "mode", nodeId: 1 });
    assert.equal(edits, 3);
    assert.equal(watchGraph({}, () => edits++), false);   // no trigger: mode changes are not seen
});

test("an execution id finds the node inside subgraphs", () => {
    const inner = { getNodeById: (id) => (id === 5 ? { id: 5, name: "inner" } : null) };
    const root = { getNodeById: (id) => (id === 12 ? { id: 12, subgraph: inner } : id === 3 ? { id: 3 } : null) };
    assert.equal(nodeByExecutionId(root, "12:5").name, "inner");
    assert.equal(nodeByExecutionId(root, "3").id, 3);
    assert.equal(nodeByExecutionId(root, "4"), null);
});

test("mode changes are events where `mode` is an accessor, on the node or on its class", () => {
    class Node { get mode() { return 0; } set mode(v) {} }
    const own = {};
    Object.defineProperty(own, "mode", { get: () => 0, set: () => {} });
    assert.equal(modeChangesAreEvents(new Node()), true);
    assert.equal(modeChangesAreEvents(own), true);
    assert.equal(modeChangesAreEvents({ mode: 0 }), false);
});
