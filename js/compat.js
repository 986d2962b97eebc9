// What LCM Kit's frontend code assumes about ComfyUI's frontend (tested on 1.32.9, 1.49.6 and 1.58.1, in both node
// renderers), in one place, as nodes/compat.py is for the server side: each probe is named for what it detects, and
// the other modules ask here instead of feature-detecting themselves. Every override of frontend behaviour lives
// here (the api's event dispatch, the arguments of queuePrompt, the template listing, the callbacks through which
// live mode hears of edits); each returns whether it took, and the caller says so where it did not.
// A pure ES module: importing it registers nothing and needs no browser (`node --test tests/js` runs it).

/** The workflow's root graph: `app.rootGraph` since subgraphs, `app.graph` before. */
export function rootGraph(app) {
    return app.rootGraph ?? app.graph;
}

/** A graph's nodes (LiteGraph's `_nodes`; `nodes` in newer frontends). */
export function graphNodes(graph) {
    return graph?._nodes ?? graph?.nodes ?? [];
}

/** A setting's value: the extension manager's settings store, or the older `app.ui.settings`. */
export function settingValue(app, id) {
    return app.extensionManager?.setting?.get?.(id) ?? app.ui?.settings?.getSettingValue?.(id);
}

/** The graph inside a subgraph node (its `subgraph`), or null for any other node. */
export function subgraphOf(node) {
    return node?.subgraph ?? null;
}

/** The node the server runs under the execution id `id` ("12:5": node 5 inside subgraph node 12) in the graph
 *  `root`, or null. */
export function nodeByExecutionId(root, id) {
    let graph = root, node = null;
    for (const part of String(id ?? "").split(":")) {
        node = graph?.getNodeById?.(Number(part)) ?? graph?.getNodeById?.(part) ?? null;
        graph = subgraphOf(node);
    }
    return node;
}

/** A node type's display name (its registered class's title, from the server's display_name), else the type. */
export function nodeDisplayName(type) {
    return globalThis.LiteGraph?.registered_node_types?.[type]?.title || type;
}

/** Ask the canvas to redraw (classic renderer; the Nodes 2.0 renderer follows widget state itself). */
export function redrawCanvas(app) {
    app.canvas?.setDirty?.(true, true);
}

/** Redraw a widget that the Nodes 2.0 renderer draws on its own canvas (older frontends have no such call). */
export function redrawWidget(widget) {
    widget?.triggerDraw?.();
}

/** Redraw one node (classic renderer). */
export function redrawNode(node) {
    node.setDirtyCanvas?.(true, true);
}

/** The size LiteGraph computes for a node from its widgets (absent on some node shells). */
export function computedNodeSize(node) {
    return node.computeSize?.();
}

/** Wrap the api's event dispatch (`api.dispatchCustomEvent`, through which every server message reaches the
 *  frontend): `wrap(original)` returns the replacement. False where the frontend has no such method. */
export function wrapEventDispatch(api, wrap) {
    const original = api.dispatchCustomEvent;
    if (typeof original !== "function") return false;
    api.dispatchCustomEvent = wrap(original);
    return true;
}

/** The API prompt `output` cut down to what the node ids `targets` need (the targets and, through their input links
 *  `[id, slot]`, everything upstream): the nodes partial execution runs. Ids as graphToPrompt writes them ("12:5"
 *  inside subgraph node 12). */
export function promptUpTo(output, targets) {
    const kept = {};
    const todo = targets.map(String).filter((id) => id in output);
    while (todo.length) {
        const id = todo.pop();
        if (id in kept) continue;
        kept[id] = output[id];
        for (const value of Object.values(output[id]?.inputs ?? {})) {
            if (Array.isArray(value) && value.length === 2 && String(value[0]) in output && !(String(value[0]) in kept))
                todo.push(String(value[0]));
        }
    }
    return kept;
}

/** True where the api can queue a prompt (`api.queuePrompt`, what the Run button ends in). */
export function canQueuePrompt(api) {
    return typeof api?.queuePrompt === "function";
}

/** Queue `output` up to the node ids `targets` through `api.queuePrompt`, so that other extensions that wrap it see
 *  the prompt. The prompt sent holds only what the targets need (promptUpTo), and the targets go as the third
 *  argument (partial execution) too: a frontend whose queuePrompt ignores that argument (before 1.2x) still runs
 *  only the part of the graph live mode asked for. Returns the api's answer ({prompt_id, …}). */
export function queuePromptUpTo(api, output, workflow, targets) {
    return api.queuePrompt(0, { output: promptUpTo(output, targets), workflow }, { partialExecutionTargets: targets });
}

const watchedNodes = new WeakSet();
const watchedWidgets = new WeakSet();
const graphHooks = new WeakMap();    // graph -> our onTrigger
const versionHooks = new WeakSet();

// Replace `owner[name]` (a callback) with one that calls what was there, then `after(...args)`.
function chain(owner, name, after) {
    const original = owner[name];
    owner[name] = function () {
        const r = typeof original === "function" ? original.apply(this, arguments) : undefined;
        after.apply(this, arguments);
        return r;
    };
    return owner[name];
}

/** Call `notify()` after each edit of `node` that can change what a queued prompt holds: a widget's value (the
 *  widget's callback, which both node renderers call on a change, and the frontend's `onWidgetChanged`), a link
 *  (`onConnectionsChange`), the node added to or removed from a graph (`onAdded`, `onRemoved`). Once per node and
 *  widget (call it again for widgets added since); what was there runs first. */
export function watchNode(node, notify) {
    if (!node) return;
    if (!watchedNodes.has(node)) {
        watchedNodes.add(node);
        for (const name of ["onWidgetChanged", "onConnectionsChange", "onAdded", "onRemoved"]) chain(node, name, notify);
    }
    // widgets added since (a subgraph node's promoted widgets) too
    for (const widget of node.widgets ?? []) {
        if (widget && typeof widget === "object" && !watchedWidgets.has(widget)) {
            watchedWidgets.add(widget);
            chain(widget, "callback", notify);
        }
    }
}

/** Call `notify()` when a node of `graph` changes mode (mute, bypass) or links: the graph's `onTrigger`
 *  ("node:property:changed", "node:slot-links:changed", 1.2x+), and where the graph has one, its incrementVersion. False where the graph has no `trigger` (those
 *  changes are then not seen). Installed again when the frontend replaced the graph's onTrigger with its own. */
export function watchGraph(graph, notify) {
    if (!graph || typeof graph.trigger !== "function") return false;
    if (graphHooks.has(graph) && graphHooks.get(graph) === graph.onTrigger) return true;
    graphHooks.set(graph, chain(graph, "onTrigger", (event) => {
        if (event?.type === "node:slot-links:changed" || (event?.type === "node:property:changed" && event.property === "mode"))
            notify();
    }));
    // Newer frontends (1.4x+) count every change of a widget's value, also of one promoted onto a subgraph node, with
    // the graph's incrementVersion.
    if (typeof graph.incrementVersion === "function" && !versionHooks.has(graph)) {
        versionHooks.add(graph);
        chain(graph, "incrementVersion", notify);
    }
    return true;
}

/** True where setting a node's `mode` reaches its graph's trigger: `mode` is an accessor, on the node (1.2x-1.3x:
 *  LiteGraph's instrumented node properties) or on its class (1.4x+). */
export function modeChangesAreEvents(node) {
    for (let o = node; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
        const descriptor = Object.getOwnPropertyDescriptor(o, "mode");
        if (descriptor) return typeof descriptor.set === "function";
    }
    return false;
}

/** Wrap the api's `getWorkflowTemplates` (the server's /workflow_templates: {pack folder: [example names]}, which
 *  the template browser lists in the order given): `wrap(original)` returns the replacement. False where absent. */
export function wrapWorkflowTemplates(api, wrap) {
    const original = api.getWorkflowTemplates;
    if (typeof original !== "function") return false;
    api.getWorkflowTemplates = wrap(original);
    return true;
}

/** This pack's folder under custom_nodes, from a module URL of it (/extensions/<folder>/<file>.js). */
export function packFolder(moduleUrl) {
    const parts = new URL(moduleUrl).pathname.split("/").filter(Boolean);
    return decodeURIComponent(parts.at(-2) ?? "");
}
