// LCM Kit live mode: the image follows the prompt as you type.
//
// Switch "live" on in a Live Preview node (LCMKitLivePreview), or run the command "LCM Kit: toggle live mode".
// While it is on, every edit of the workflow re-queues it up to the Live Preview nodes (js/scheduling.js says
// when and what is withdrawn or interrupted), through the frontend's own queue (js/transport.js), and each
// Live Preview node shows the newest frame with an fps / latency readout and the error of a failed live run
// (js/view.js), as a widget that both node renderers draw. A failed live run never opens a modal dialog.
// Unchanged upstream nodes (checkpoint, LoRAs) come from ComfyUI's cache, so an edit costs only what it changes.
import { app } from "../../scripts/app.js";
import { graphNodes, nodeDisplayName, redrawCanvas, rootGraph as rootGraphOf, settingValue, subgraphOf } from "./compat.js";
import { DEFAULT_DEBOUNCE_MS, LiveMode, workflowKey } from "./scheduling.js";
import { LiveTransport } from "./transport.js";
import { LiveView } from "./view.js";

const NODE_CLASS = "LCMKitLivePreview";
const DEBOUNCE_SETTING = "LCMKit.Live.DebounceMs";

function rootGraph() {
    return rootGraphOf(app);
}

/** The Live Preview nodes that run (not muted or bypassed), each as {id, node}: `id` is the id the server runs it
 *  under ("12:5" for node 5 inside the subgraph node 12), found in the root graph and inside subgraphs. */
function liveTargets(graph = rootGraph(), prefix = "") {
    const found = [];
    for (const node of graphNodes(graph)) {
        if (node.mode !== 0) continue;
        if (node.comfyClass === NODE_CLASS) found.push({ id: `${prefix}${node.id}`, node });
        const inner = subgraphOf(node);
        if (inner) found.push(...liveTargets(inner, `${prefix}${node.id}:`));
    }
    return found;
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

const transport = new LiveTransport({
    isOurs: (id) => live.isOurs(id),
    onStart: (id, timestamp) => live.onStart(id, timestamp),
    onFinished: (id, kind, detail) => live.onFinished(id, kind, detail),
    onFrame: (meta, blob) => live.onFrame(meta, blob),
}, nodeDisplayName);

export const live = new LiveMode({
    graph: {
        targets: () => liveTargets(),
        key: () => workflowKey(rootGraph().serialize()),
        prompt: () => app.graphToPrompt(),
    },
    transport,
    onChange: redraw,
    debounceMs,
    displayName: nodeDisplayName,
});
globalThis.lcmKitLive = live;   // a handle for the browser console and the end-to-end tests

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
        function: () => live.setLive(!live.on),
    }],
    setup() {
        transport.listen();
    },
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== NODE_CLASS) return;
        const onNodeCreated = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const r = onNodeCreated?.apply(this, arguments);
            // A client-side switch: not saved in widgets_values, not sent to the server.
            const toggle = this.addWidget("toggle", "live", live.on, (v) => live.setLive(!!v),
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
            live.frames.get(String(this.id))?.bitmap?.close?.();
            live.frames.delete(String(this.id));
        };
    },
});
