// LCM Kit live mode: the image follows the prompt as you type.
//
// Switch "live" on in a Live Preview node (LCMKitLivePreview). While it is on, every change of a widget
// value or a link in the workflow re-queues the graph after a debounce (setting "LCMKit.Live.DebounceMs"),
// only up to the Live Preview nodes (partial execution: Save Image nodes don't write a file per keystroke).
// The prompt it replaces is removed from the queue or interrupted (core /queue and /interrupt, by prompt id),
// frames of older prompts are dropped, and the newest frame is drawn on the node with an FPS / latency
// readout. A failed run shows its error on the node and live mode goes on with the next edit.
// Unchanged upstream nodes (checkpoint, LoRAs) come from ComfyUI's cache, so an edit costs only what it changes.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_CLASS = "LCMKitLivePreview";
const FRAME_EVENT = "lcm_kit.live_frame";
const DEBOUNCE_SETTING = "LCMKit.Live.DebounceMs";
const DEFAULT_DEBOUNCE_MS = 150;
const POLL_MS = 100;           // catches widget changes that fire no DOM event (canvas widgets, links)
const FPS_WINDOW_MS = 60000;
const FPS_FRAMES = 10;
const HISTORY_LIMIT = 500;

function uuid4() {
    if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function debounceMs() {
    const value = app.extensionManager?.setting?.get?.(DEBOUNCE_SETTING)
        ?? app.ui?.settings?.getSettingValue?.(DEBOUNCE_SETTING);
    const ms = Number(value);
    return Number.isFinite(ms) && ms >= 0 ? ms : DEFAULT_DEBOUNCE_MS;
}

function livePreviewNodes() {
    return (app.graph?._nodes ?? app.graph?.nodes ?? []).filter((n) => n.comfyClass === NODE_CLASS && n.mode === 0);
}

// What a re-queue depends on: widget values, modes and links; not positions, sizes or selection.
function graphKey() {
    const wf = app.graph.serialize();
    const nodes = wf.nodes.map((n) => [n.id, n.type, n.mode, n.widgets_values, (n.inputs ?? []).map((i) => i.link)]);
    nodes.sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    return JSON.stringify([nodes, wf.links]);
}

function describeQueueError(body) {
    const parts = [body?.error?.message, body?.error?.details].filter(Boolean);
    for (const [id, e] of Object.entries(body?.node_errors ?? {})) {
        const first = e?.errors?.[0];
        if (first) parts.push(`#${id} ${e.class_type}: ${first.message} ${first.details ?? ""}`.trim());
    }
    return parts.join(" — ") || "the prompt was rejected";
}

class LiveMode {
    constructor() {
        this.on = false;
        this.seq = 0;
        this.prompts = new Map();      // prompt id -> {seq, changedAt, queuedAt, startedAt, cancelled}
        this.inflight = new Set();     // our prompt ids the server has not finished
        this.latest = null;            // prompt id of the newest queued graph
        this.shown = { seq: -1, frame: -1 };
        this.pendingMeta = null;       // the frame announcement waiting for its binary message
        this.seenKey = null;
        this.changedAt = 0;
        this.timer = null;
        this.poll = null;
        this.checking = false;
        this.recheck = false;
        this.frames = new Map();       // node id -> {bitmap, meta}
        this.frameTimes = [];
        this.latencyMs = null;
        this.computeMs = null;
        this.error = null;
        this.stats = { queued: 0, cancelled: 0, frames: 0, dropped: 0, errors: 0, rejected: 0 };
        this.history = [];             // shown frames, newest last (bounded): for the readout and for tests
        this.onInput = () => setTimeout(() => this.check(), 0);
    }

    setLive(on) {
        if (on === this.on) return;
        on ? this.start() : this.stop();
    }

    start() {
        this.on = true;
        this.seenKey = null;
        this.error = null;
        this.frameTimes = [];
        this.poll = setInterval(() => this.check(), POLL_MS);
        document.addEventListener("input", this.onInput);
        document.addEventListener("pointerup", this.onInput);
        this.syncToggles();
        this.check();
    }

    stop() {
        this.on = false;
        clearInterval(this.poll);
        clearTimeout(this.timer);
        this.poll = this.timer = null;
        document.removeEventListener("input", this.onInput);
        document.removeEventListener("pointerup", this.onInput);
        for (const id of [...this.inflight]) this.cancel(id);
        this.pendingMeta = null;
        this.syncToggles();
        this.redraw();
    }

    syncToggles() {
        for (const node of livePreviewNodes()) {
            const w = node.widgets?.find((x) => x.name === "live");
            if (w) w.value = this.on;
        }
    }

    async check() {
        if (!this.on) return;
        if (this.checking) { this.recheck = true; return; }
        this.checking = true;
        try {
            if (!livePreviewNodes().length) { this.stop(); return; }
            const key = graphKey();
            if (key !== this.seenKey) {
                this.seenKey = key;
                this.changedAt = performance.now();
                clearTimeout(this.timer);
                this.timer = setTimeout(() => this.queueLatest(this.changedAt), debounceMs());
            }
        } catch (e) {
            this.showError(`live: ${e?.message ?? e}`);
        } finally {
            this.checking = false;
            if (this.recheck) { this.recheck = false; setTimeout(() => this.check(), 0); }
        }
    }

    async queueLatest(changedAt) {
        if (!this.on) return;
        const targets = livePreviewNodes().map((n) => String(n.id));
        const { output } = await app.graphToPrompt();
        const id = uuid4();
        const stale = [...this.inflight];
        this.prompts.set(id, { seq: ++this.seq, changedAt, queuedAt: performance.now(), startedAt: null, cancelled: false });
        this.latest = id;
        this.inflight.add(id);
        this.stats.queued++;
        let res;
        try {
            res = await api.fetchApi("/prompt", {
                method: "POST",
                headers: { "Content-Type": "application/json" },
                body: JSON.stringify({
                    client_id: api.clientId ?? api.initialClientId, prompt: output, prompt_id: id,
                    partial_execution_targets: targets, extra_data: { lcm_kit_live: true },
                }),
            });
        } catch (e) {
            this.inflight.delete(id);
            this.showError(`could not queue: ${e?.message ?? e}`);
            return;
        }
        if (!res.ok) {
            this.inflight.delete(id);
            this.stats.rejected++;
            let body = null;
            try { body = await res.json(); } catch { /* not JSON */ }
            this.showError(describeQueueError(body));
        }
        // Cancel the replaced prompts only now, so the server goes straight on with the new one.
        for (const old of stale) this.cancel(old);
    }

    // Remove from the queue if still waiting, interrupt if running (the server ignores the other case).
    cancel(id) {
        const p = this.prompts.get(id);
        if (!p || p.cancelled) return;
        p.cancelled = true;
        this.stats.cancelled++;
        const post = (path, body) => api.fetchApi(path, {
            method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        }).catch(() => {});
        post("/queue", { delete: [id] })
            .then(() => post("/interrupt", { prompt_id: id }))
            .then(() => {
                // Never started: it was removed from the queue and no execution event will come for it.
                // (Had it started meanwhile, the interrupt ends it and execution_interrupted arrives.)
                if (!p.startedAt) this.inflight.delete(id);
            });
    }

    // ---- server events ----

    onStart(id) {
        const p = this.prompts.get(id);
        if (p) p.startedAt = performance.now();
    }

    onFinished(id, kind, detail) {
        const p = this.prompts.get(id);
        if (!p) return;
        this.inflight.delete(id);
        if (kind === "error") {
            this.stats.errors++;
            if (id === this.latest || p.seq >= this.shown.seq)
                this.showError(`${detail?.node_type ?? "error"}: ${detail?.exception_message ?? "failed"}`.trim());
        } else if (kind === "success" && id === this.latest) {
            this.error = null;
            this.redraw();
        } else if (kind === "interrupted" && id === this.latest && !p.cancelled && this.on) {
            // Interrupted by someone else (or a race with our own cancel): run the current graph again.
            this.seenKey = null;
            this.check();
        }
        // Forget old prompts; keep the map small over long sessions.
        for (const [pid, q] of this.prompts) {
            if (q.seq < this.seq - 50 && !this.inflight.has(pid)) this.prompts.delete(pid);
        }
    }

    onFrameMeta(meta) {
        this.pendingMeta = meta;
    }

    async onPreview(blob) {
        const meta = this.pendingMeta;
        if (!meta) return;                       // a latent preview of a sampler, not ours
        this.pendingMeta = null;
        const p = this.prompts.get(meta.prompt_id);
        if (!this.on || !p || this.isStale(p, meta)) { this.stats.dropped++; return; }
        const arrivedAt = performance.now();
        const bitmap = await createImageBitmap(blob);
        if (!this.on || this.isStale(p, meta)) { bitmap.close?.(); this.stats.dropped++; return; }
        this.shown = { seq: p.seq, frame: meta.frame };
        const previous = this.frames.get(String(meta.node));
        previous?.bitmap?.close?.();
        this.frames.set(String(meta.node), { bitmap, meta });
        this.stats.frames++;
        this.frameTimes.push(arrivedAt);
        this.latencyMs = arrivedAt - p.changedAt;
        this.computeMs = p.startedAt ? arrivedAt - p.startedAt : null;
        if (meta.prompt_id === this.latest) this.error = null;
        this.history.push({ promptId: meta.prompt_id, frame: meta.frame, seq: p.seq, latencyMs: this.latencyMs,
                            computeMs: this.computeMs, width: meta.width, height: meta.height, at: arrivedAt });
        if (this.history.length > HISTORY_LIMIT) this.history.splice(0, this.history.length - HISTORY_LIMIT);
        this.redraw();
    }

    isStale(p, meta) {
        return p.seq < this.shown.seq || (p.seq === this.shown.seq && meta.frame <= this.shown.frame);
    }

    // Frames per second over the last few frames (at most FPS_FRAMES, none older than FPS_WINDOW_MS), so a
    // slow machine shows its real rate rather than 0; null until two frames came in.
    fps() {
        const now = performance.now();
        this.frameTimes = this.frameTimes.filter((t) => now - t <= FPS_WINDOW_MS).slice(-FPS_FRAMES);
        if (this.frameTimes.length < 2) return null;
        return (this.frameTimes.length - 1) * 1000 / Math.max(1, this.frameTimes.at(-1) - this.frameTimes[0]);
    }

    showError(message) {
        this.error = message;
        this.redraw();
    }

    redraw() {
        app.canvas?.setDirty?.(true, true);
        app.graph?.setDirtyCanvas?.(true, true);
    }
}

const live = new LiveMode();
globalThis.lcmKitLive = live;   // a handle for the browser console and the end-to-end tests

function drawLive(node, ctx) {
    if (node.flags?.collapsed) return;
    const last = node.widgets?.at(-1);
    const top = (last?.last_y ?? 0) + (globalThis.LiteGraph?.NODE_WIDGET_HEIGHT ?? 20) + 6;
    const [w, h] = node.size;
    ctx.save();
    ctx.font = "12px sans-serif";
    ctx.textBaseline = "top";
    let status;
    if (!live.on) status = "live off";
    else {
        const fps = live.fps();
        status = `● live  ${fps == null ? "–" : fps < 1 ? fps.toFixed(2) : fps.toFixed(1)} fps`;
        if (live.latencyMs != null) status += `  ${Math.round(live.latencyMs)} ms`;
        if (live.computeMs != null) status += ` (run ${Math.round(live.computeMs)} ms)`;
    }
    ctx.fillStyle = live.on ? "#8f8" : "#aaa";
    ctx.fillText(status, 8, top);
    let imageTop = top + 18;
    if (live.error) {
        ctx.fillStyle = "#f77";
        const text = live.error.length > 160 ? live.error.slice(0, 157) + "…" : live.error;
        const perLine = Math.max(10, Math.floor((w - 16) / 6.5));
        for (let i = 0; i < text.length && i < perLine * 3; i += perLine) {
            ctx.fillText(text.slice(i, i + perLine), 8, imageTop);
            imageTop += 15;
        }
    }
    const frame = live.frames.get(String(node.id));
    if (frame) {
        const aw = w - 16, ah = h - imageTop - 8;
        if (aw > 8 && ah > 8) {
            const scale = Math.min(aw / frame.bitmap.width, ah / frame.bitmap.height);
            const dw = frame.bitmap.width * scale, dh = frame.bitmap.height * scale;
            ctx.drawImage(frame.bitmap, 8 + (aw - dw) / 2, imageTop, dw, dh);
        }
    }
    ctx.restore();
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
        function: () => live.setLive(!live.on),
    }],
    setup() {
        api.addEventListener(FRAME_EVENT, ({ detail }) => live.onFrameMeta(detail));
        api.addEventListener("b_preview", ({ detail }) => { live.onPreview(detail); });
        api.addEventListener("execution_start", ({ detail }) => live.onStart(detail?.prompt_id));
        api.addEventListener("execution_success", ({ detail }) => live.onFinished(detail?.prompt_id, "success", detail));
        api.addEventListener("execution_error", ({ detail }) => live.onFinished(detail?.prompt_id, "error", detail));
        api.addEventListener("execution_interrupted", ({ detail }) =>
            live.onFinished(detail?.prompt_id, "interrupted", detail));
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
            if (this.size[1] < 300) this.setSize([Math.max(this.size[0], 320), 360]);
            return r;
        };
        const onDrawForeground = nodeType.prototype.onDrawForeground;
        nodeType.prototype.onDrawForeground = function (ctx) {
            onDrawForeground?.apply(this, arguments);
            drawLive(this, ctx);
        };
        const onRemoved = nodeType.prototype.onRemoved;
        nodeType.prototype.onRemoved = function () {
            onRemoved?.apply(this, arguments);
            live.frames.get(String(this.id))?.bitmap?.close?.();
            live.frames.delete(String(this.id));
        };
    },
});
