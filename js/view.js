// LCM Kit live mode, the view: what a Live Preview node shows, as one DOM widget that both node renderers
// draw (classic LiteGraph and Nodes 2.0): a readout (live on/off, fps, how long after your edit the frame
// came and how long its run took), the error of the last failed live run (wrapped, as text), and the newest
// frame. A helper module: importing it registers nothing.
import { redrawWidget } from "./compat.js";
import { mountPanel, textElement } from "./status.js";

const VIEW_WIDGET = "lcm_kit_live_view";
const MIN_HEIGHT = 200;

/** 850 ms, 1.2 s, 12 s: a duration as a user reads it. */
export function formatDuration(ms) {
    if (ms == null || !Number.isFinite(ms)) return "–";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    return ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** The readout line for a live state {on, fps, latencyMs, computeMs, hasFrame}. */
export function readoutText({ on, fps, latencyMs, computeMs, hasFrame }) {
    if (!on) return "live off · switch live on and the image follows your edits";
    const parts = ["● live"];
    if (fps != null) parts.push(`${fps < 1 ? fps.toFixed(2) : fps.toFixed(1)} fps`);
    if (!hasFrame) parts.push("waiting for the first frame");
    else if (latencyMs != null) {
        let text = `frame ${formatDuration(latencyMs)} after your edit`;
        if (computeMs != null) text += ` (run ${formatDuration(computeMs)})`;
        parts.push(text);
    }
    return parts.join(" · ");
}

/** The live view of one node. `update(state)` redraws it: state = {on, fps, latencyMs, computeMs, error,
 *  frame: {bitmap, meta} | null}. */
export class LiveView {
    constructor(node) {
        this.node = node;
        this.root = document.createElement("div");
        this.root.className = "lcm-kit-panel lcm-kit-live";
        this.readout = textElement("div", "", "lcm-kit-readout off");
        this.error = textElement("div", "", "lcm-kit-line error");
        this.error.style.display = "none";
        this.frameBox = document.createElement("div");
        this.frameBox.className = "lcm-kit-frame-box";
        this.canvas = document.createElement("canvas");
        this.canvas.className = "lcm-kit-frame";
        this.canvas.width = this.canvas.height = 0;
        this.frameBox.appendChild(this.canvas);
        this.root.append(this.readout, this.error, this.frameBox);
        this.shownFrame = null;
        this.widget = mountPanel(node, VIEW_WIDGET, this.root, () => MIN_HEIGHT, { grow: true });
    }

    update({ on, fps, latencyMs, computeMs, error, frame }) {
        const text = readoutText({ on, fps, latencyMs, computeMs, hasFrame: !!frame });
        if (this.readout.textContent !== text) this.readout.textContent = text;
        this.readout.className = `lcm-kit-readout ${on ? "on" : "off"}`;
        const message = error ? String(error) : "";
        if (this.error.textContent !== message) this.error.textContent = message;
        this.error.style.display = message ? "" : "none";
        if (frame && frame !== this.shownFrame) {
            const { bitmap } = frame;
            if (this.canvas.width !== bitmap.width || this.canvas.height !== bitmap.height) {
                this.canvas.width = bitmap.width;
                this.canvas.height = bitmap.height;
            }
            this.canvas.getContext("2d").drawImage(bitmap, 0, 0);
            this.canvas.dataset.promptId = frame.meta?.prompt_id ?? "";
            this.canvas.dataset.frame = String(frame.meta?.frame ?? "");
        }
        this.shownFrame = frame ?? this.shownFrame;
        redrawWidget(this.widget);
    }

    remove() {
        this.shownFrame = null;
    }
}
