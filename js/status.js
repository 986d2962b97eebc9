// LCM Kit: status lines on a node, in both node renderers (classic LiteGraph and Nodes 2.0).
//
// A helper module: importing it registers nothing (ComfyUI imports every .js of the pack as an extension).
// Python sends each node's messages one way (nodes/status.py): the node's ui output `lcm_kit_status`, a list
// of {level: "info" | "warning", text}. `showStatus(node, lines)` shows them on the node as a DOM widget
// (the one kind of on-node UI both renderers draw), and clears them when called without lines. Texts go
// into the page as text (textContent), never as HTML: they carry file names and error messages.
// A warning never changes the node's colour: the user's colour stays; the line says what is wrong.
import { computedNodeSize, redrawNode, redrawWidget } from "./compat.js";

export const STATUS_KEY = "lcm_kit_status";
const STATUS_WIDGET = "lcm_kit_status";
const HINT_WIDGET = "lcm_kit_hint";
const LINE_HEIGHT = 16;
const CHAR_WIDTH = 6.5;        // at 12px sans-serif: to estimate wrapped lines before the browser laid them out
const STYLE_ID = "lcm-kit-style";
const PANEL_MARGIN = 4;       // px around a DOM widget's element (the frontend's default is 10)

const STYLESHEET = "lcm_kit.css";   // beside this module: served with the extension, loaded once

/** Load the pack's stylesheet (js/lcm_kit.css) into the page once. */
export function ensureStyle() {
    if (document.getElementById(STYLE_ID)) return;
    const link = document.createElement("link");
    link.id = STYLE_ID;
    link.rel = "stylesheet";
    link.href = new URL(STYLESHEET, import.meta.url).href;
    document.head.appendChild(link);
}

/** An element holding `text` as text (never parsed as HTML). */
export function textElement(tag, text = "", className = "") {
    const el = document.createElement(tag);
    if (className) el.className = className;
    el.textContent = text;
    return el;
}

/** How many lines `texts` take in a node `width` px wide (an estimate, for the widget's height). */
export function wrappedLines(texts, width) {
    const perLine = Math.max(8, Math.floor((width - 16) / CHAR_WIDTH));
    return texts.reduce((n, t) => n + String(t).split("\n")
        .reduce((m, part) => m + Math.max(1, Math.ceil(part.length / perLine)), 0), 0);
}

/** Mount `element` on `node` as a DOM widget named `name`: drawn by both node renderers. Not saved with
 *  the workflow and not sent to the server (no value). `minHeight(node)` gives the element's height in px; with
 *  `grow`, it also takes the node's free height (classic renderer). */
export function mountPanel(node, name, element, minHeight, { grow = false } = {}) {
    ensureStyle();
    // The widget's height includes its margin above and below the element.
    const height = () => { const h = minHeight(node); return h > 0 ? h + 2 * PANEL_MARGIN : 0; };
    const widget = node.addDOMWidget(name, "lcm_kit_panel", element, {
        serialize: false,
        hideOnZoom: false,
        margin: PANEL_MARGIN,
        getValue() { return undefined; },
        setValue() {},
        getMinHeight: height,
        ...(grow ? {} : { getMaxHeight: height }),
    });
    widget.serialize = false;
    return widget;
}

/** Grow the node so that its widgets fit (classic renderer); Nodes 2.0 lays the node out itself. */
export function fitNode(node) {
    const wanted = computedNodeSize(node);
    if (wanted && node.size && wanted[1] > node.size[1]) node.setSize?.([node.size[0], wanted[1]]);
    redrawNode(node);
}

/** Show `lines` ([{level, text}]) on `node` below its widgets; none: clear what was shown. */
export function showStatus(node, lines) {
    const shown = (Array.isArray(lines) ? lines : []).filter((l) => l && l.text != null && String(l.text) !== "");
    let state = node.lcmKitStatus;
    if (!state && !shown.length) return;
    if (!state) {
        const element = document.createElement("div");
        element.className = "lcm-kit-panel lcm-kit-status";
        state = node.lcmKitStatus = { element, lines: [], measured: 0 };
        state.widget = mountPanel(node, STATUS_WIDGET, element, (n) => {
            const st = n.lcmKitStatus;
            if (!st.lines.length) return 0;
            return Math.max(wrappedLines(st.lines.map(linePrefix), n.size?.[0] ?? 300) * LINE_HEIGHT + 6, st.measured);
        });
    }
    state.lines = shown;
    state.element.replaceChildren(...shown.map((l) => textElement("div", linePrefix(l), `lcm-kit-line ${levelOf(l)}`)));
    state.element.style.display = shown.length ? "" : "none";
    state.element.dataset.level = shown.some((l) => levelOf(l) === "warning") ? "warning" : shown.length ? "info" : "";
    redrawWidget(state.widget);
    state.measured = 0;
    fitNode(node);
    // The classic renderer gives the widget the height estimated above and clips the rest: once the browser
    // laid the lines out, make room for what it really needs.
    if (shown.length) requestAnimationFrame(() => requestAnimationFrame(() => {
        const missing = state.element.scrollHeight - state.element.clientHeight;
        if (missing > 1 && state.element.clientHeight > 0 && node.size) {
            state.measured = state.element.scrollHeight;
            node.setSize?.([node.size[0], node.size[1] + missing]);
            redrawNode(node);
        }
    }));
}

function levelOf(line) {
    return line.level === "warning" || line.level === "error" ? line.level : "info";
}

function linePrefix(line) {
    const level = levelOf(line);
    return (level === "warning" ? "⚠ " : level === "error" ? "✖ " : "") + String(line.text);
}

/** Show one hint line `text` on `node` (its own panel, apart from the run's status lines: a hint follows the
 *  widgets, not a run); empty text: hide it. */
export function showHint(node, text) {
    let hint = node.lcmKitHint;
    if (!hint && !text) return;
    if (!hint) {
        const element = textElement("div", "", "lcm-kit-panel lcm-kit-status lcm-kit-line hint");
        hint = node.lcmKitHint = { element, text: "" };
        hint.widget = mountPanel(node, HINT_WIDGET, element, (n) =>
            n.lcmKitHint.text ? wrappedLines([n.lcmKitHint.text], n.size?.[0] ?? 300) * LINE_HEIGHT + 6 : 0);
    }
    if (hint.text === text) return;
    hint.text = text;
    hint.element.textContent = text;
    hint.element.style.display = text ? "" : "none";
    redrawWidget(hint.widget);
    fitNode(node);
}

/** Make every node of `nodeType` show the status lines its runs send (ui.lcm_kit_status). */
export function showStatusOnExecuted(nodeType) {
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
        const r = onExecuted?.apply(this, arguments);
        if (message && STATUS_KEY in message) showStatus(this, message[STATUS_KEY]);
        return r;
    };
}
