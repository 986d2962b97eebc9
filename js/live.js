// LCM Kit live mode: the image follows the prompt as you type.
//
// Switch "live" on in a Live Preview node (LCMKitLivePreview), or run the command "LCM Kit: toggle live mode".
// While it is on, every edit of the workflow re-queues it up to the Live Preview nodes (js/scheduling.js says
// when and what is withdrawn or interrupted), through the frontend's own queue (js/transport.js), and each
// Live Preview node shows the newest frame with an fps / latency readout, the run's progress and the error of a
// failed live run (js/view.js), as a widget that both node renderers draw. A failed live run never opens a modal
// dialog. Live off, a Live Preview shows the image of a normal Run, as Preview Image does (saving nothing).
// Unchanged upstream nodes (checkpoint, LoRAs) come from ComfyUI's cache, so an edit costs only what it changes.
//
// Edits are events (js/compat.js watchNode / watchGraph): a widget's change, a link, a node added or removed (also
// inside subgraphs), a node's mode, and typing in a node's text box; the Sketch node is a source of its own
// (js/sketch.js). Nothing polls the graph.
import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";
import { canQueuePrompt, graphNodes, modeChangesAreEvents, nodeByExecutionId, nodeDisplayName, redrawCanvas, rootGraph as rootGraphOf,
         settingValue, subgraphOf, watchGraph, watchNode } from "./compat.js";
import { DEFAULT_DEBOUNCE_MS, LiveMode } from "./scheduling.js";
import { LiveTransport } from "./transport.js";
import { LiveView } from "./view.js";

const NODE_CLASS = "LCMKitLivePreview";
const DEBOUNCE_SETTING = "LCMKit.Live.DebounceMs";
// Where typing is not an edit of the graph (the settings dialog's search box, other dialogs).
const NOT_THE_GRAPH = ".p-dialog, [role=dialog], .comfy-modal";

function rootGraph() {
    return rootGraphOf(app);
}

/** The Live Preview nodes that run (not muted or bypassed), each as {id, node}: `id` is the id the server runs it
 *  under ("12:5" for node 5 inside the subgraph node 12), found in the root graph and inside subgraphs. Each graph
 *  and node on the way is watched for edits (once). */
function liveTargets(graph = rootGraph(), prefix = "") {
    const found = [];
    watchGraph(graph, notifyEdit);
    for (const node of graphNodes(graph)) {
        watchNode(node, notifyEdit);   // also nodes no extension hook saw created (subgraph nodes, reroutes)
        if (node.mode !== 0) continue;
        if (node.comfyClass === NODE_CLASS) found.push({ id: `${prefix}${node.id}`, node });
        const inner = subgraphOf(node);
        if (inner) found.push(...liveTargets(inner, `${prefix}${node.id}:`));
    }
    return found;
}

function nodeLabel(id) {
    const node = nodeByExecutionId(rootGraph(), id);
    return node ? `${node.title || nodeDisplayName(node.comfyClass ?? node.type)} #${id}` : `#${id}`;
}

function debounceMs() {
    const value = settingValue(app, DEBOUNCE_SETTING);
    const ms = Number(value);
    return Number.isFinite(ms) && ms >= 0 ? ms : DEFAULT_DEBOUNCE_MS;
}

const views = new Map();       // Live Preview node -> LiveView

function redraw() {
    const targets = liveTargets();   // one walk of the graph (and its subgraphs) per redraw
    const ids = new Map(targets.map((t) => [t.node, t.id]));
    for (const [node, view] of views) view.update(live.viewState(ids.get(node) ?? node.id));
    syncToggles(targets);
    redrawCanvas(app);
}

// The "live" switch of every Live Preview node follows live mode (also when the command switched it).
// Setting the value and calling the widget's callback is what the Nodes 2.0 renderer of older frontends
// watches; newer ones watch the value itself.
function syncToggles(targets) {
    for (const { node } of targets) {
        const w = node.widgets?.find((x) => x.name === "live");
        if (w && w.value !== live.on) {
            w.value = live.on;
            w.callback?.(live.on);
        }
    }
}

const transport = new LiveTransport(api, {
    isOurs: (id) => live.isOurs(id),
    onStart: (id, timestamp) => live.onStart(id, timestamp),
    onProgress: (id, progress) => live.onProgress(id, progress),
    onFinished: (id, kind, detail) => live.onFinished(id, kind, detail),
    onFrame: (meta, blob) => live.onFrame(meta, blob),
}, nodeDisplayName);

export const live = new LiveMode({
    graph: {
        targets: () => liveTargets(),
        prompt: () => app.graphToPrompt(),
        nodeLabel,
    },
    transport,
    onChange: redraw,
    debounceMs,
    displayName: nodeDisplayName,
});

// Edits of the graph: one source for all of them.
const edits = live.source();
function notifyEdit() {
    edits.changed();
}

// Typing in a node's text box: the edit counts from the keystroke (the widget's value follows a moment later).
function onInput(e) {
    if (!live.on || e.target?.closest?.(NOT_THE_GRAPH)) return;
    edits.changed(e.timeStamp || undefined);
}
document.addEventListener("input", onInput, true);

// What this frontend cannot do, said on the Live Preview nodes when live mode starts (the probes of js/compat.js).
const FILTER_NOTICE = "this frontend's events cannot be filtered: a failed live run also opens its error dialog";
const QUEUE_NOTICE = "this frontend has no api.queuePrompt: live mode cannot queue here (update ComfyUI's frontend)";
const MODE_NOTICE = "mute and bypass are not seen as edits on this frontend: make another edit to re-queue";

function probe() {
    live.setNotice("queue", canQueuePrompt(api) ? "" : QUEUE_NOTICE);
    const graphs = watchGraph(rootGraph(), notifyEdit);
    const node = graphNodes(rootGraph())[0];
    live.setNotice("mode", graphs && (!node || modeChangesAreEvents(node)) ? "" : MODE_NOTICE);
    return canQueuePrompt(api);
}

/** Switch live mode on or off (the node's switch, the command, the Sketch node's camera); returns whether it is on. */
export function setLive(on) {
    if (on && !probe()) on = false;   // it could not queue: the node says why
    live.setLive(on);
    return live.on;
}

app.registerExtension({
    name: "LCMKit.Live",
    settings: [{
        id: DEBOUNCE_SETTING,
        category: ["LCM Kit", "Live", "Debounce"],
        name: "Live mode: wait this long after the last edit before re-queuing (ms)",
        tooltip: "Lower is more responsive but queues more runs while you type; 0 queues on every change.",
        type: "number",
        attrs: { min: 0, max: 5000, step: 10 },
        defaultValue: DEFAULT_DEBOUNCE_MS,
    }],
    commands: [{
        id: "LCMKit.Live.Toggle",
        label: "LCM Kit: toggle live mode",
        function: () => setLive(!live.on),
    }],
    setup() {
        live.setNotice("filter", transport.listen() ? "" : FILTER_NOTICE);
    },
    // Every node of the workflow tells live mode of its edits (a no-op while live is off).
    nodeCreated(node) {
        watchNode(node, notifyEdit);
    },
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== NODE_CLASS) return;
        const onNodeCreated = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const r = onNodeCreated?.apply(this, arguments);
            // A client-side switch: not saved in widgets_values, not sent to the server.
            const toggle = this.addWidget("toggle", "live", live.on, (v) => setLive(!!v),
                                          { on: "on", off: "off", serialize: false });
            toggle.serialize = false;
            const view = new LiveView(this);
            views.set(this, view);
            view.update(live.viewState(this.id));
            if (this.size[1] < 360) this.setSize([Math.max(this.size[0], 320), 360]);
            return r;
        };
        const onRemoved = nodeType.prototype.onRemoved;
        nodeType.prototype.onRemoved = function () {
            onRemoved?.apply(this, arguments);
            views.get(this)?.remove();
            views.delete(this);
            live.forgetNode(this.id);
        };
    },
});
