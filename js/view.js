// LCM Kit live mode, the view: what a Live Preview node shows, as one DOM widget that both node renderers
// draw (classic LiteGraph and Nodes 2.0): a readout (live on/off, fps, how long after your edit or the camera's
// capture the frame came and how long its run took, the progress of a run under way; js/readout.js), what this
// frontend cannot do, the error of the last failed live run (wrapped, as text), and the newest frame (of a live run
// or of a normal Run). A helper module: importing it registers nothing.
import { redrawWidget } from "./compat.js";
import { readoutText } from "./readout.js";
import { mountPanel, textElement } from "./status.js";

const VIEW_WIDGET = "lcm_kit_live_view";
const MIN_HEIGHT = 200;

/** The live view of one node. `update(state)` redraws it: state = LiveMode.viewState(node id). */
export class LiveView {
    constructor(node) {
        this.node = node;
        this.root = document.createElement("div");
        this.root.className = "lcm-kit-panel lcm-kit-live";
        this.readout = textElement("div", "", "lcm-kit-readout off");
        this.notice = textElement("div", "", "lcm-kit-line warning lcm-kit-notice");
        this.notice.style.display = "none";
        this.error = textElement("div", "", "lcm-kit-line error");
        this.error.style.display = "none";
        this.frameBox = document.createElement("div");
        this.frameBox.className = "lcm-kit-frame-box";
        this.canvas = document.createElement("canvas");
        this.canvas.className = "lcm-kit-frame";
        this.canvas.width = this.canvas.height = 0;
        this.frameBox.appendChild(this.canvas);
        this.root.append(this.readout, this.notice, this.error, this.frameBox);
        this.shownFrame = null;
        this.widget = mountPanel(node, VIEW_WIDGET, this.root, () => MIN_HEIGHT, { grow: true });
    }

    update({ on, fps, latencyMs, computeMs, latencyFrom, error, frame, progress, notices = [] }) {
        const text = readoutText({ on, fps, latencyMs, computeMs, latencyFrom, hasFrame: !!frame, progress });
        if (this.readout.textContent !== text) this.readout.textContent = text;
        this.readout.className = `lcm-kit-readout ${on ? "on" : "off"}`;
        showText(this.notice, notices.map((n) => `⚠ ${n}`).join("\n"));
        showText(this.error, error ? String(error) : "");
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

function showText(element, text) {
    if (element.textContent !== text) element.textContent = text;
    element.style.display = text ? "" : "none";
}
