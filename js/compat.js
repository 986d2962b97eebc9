// What LCM Kit's frontend code assumes about ComfyUI's frontend (tested on 1.32.9, 1.49.6 and 1.58.1, in both node
// renderers), in one place, as nodes/compat.py is for the server side: each probe is named for what it detects, and
// the other modules ask here instead of feature-detecting themselves. Importing this module registers nothing.

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
