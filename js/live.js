// LCM Kit live mode: the image follows the prompt as you type.
//
// Switch "live" on in a Live Preview node (LCMKitLivePreview). While it is on, every change of a widget
// value or a link in the workflow re-queues the graph after a debounce (setting "LCMKit.Live.DebounceMs"),
// only up to the Live Preview nodes (partial execution: Save Image nodes don't write a file per keystroke).
// While edits go on without a pause the debounce has a max wait, so the image follows the typing instead
// of waiting for it to stop, and the server never idles: one prompt runs, the next waits in the queue behind
// it, and shortly before the running one is expected to end (the shortest of the last few run times) the
// waiting one is swapped for the newest graph (core /queue delete, by prompt id). Queuing never interrupts
// a run while you type: the pauses between keystrokes are often longer than the debounce.
// Once the edits stop (no edit for PAUSE_MS, at least twice the debounce), a stale run that is in the first
// half of its expected run time is interrupted (core /interrupt with its prompt id), so the newest graph
// runs at once; later in its run, its frame comes sooner than the new one could, so it finishes.
// Frames of older prompts than the one shown are dropped, and the newest frame is drawn on the node with an
// FPS / latency readout. A failed run shows its error on the node and live mode goes on with the next edit.
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
const RUN_SAMPLES = 3;         // expected run time = the shortest of the last RUN_SAMPLES runs
const PAUSE_MS = 400;          // no edit for this long (and twice the debounce): the edits have stopped

function uuid4() {
    if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function pushBounded(list, value, limit = RUN_SAMPLES) {
    list.push(value);
    if (list.length > limit) list.shift();
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
        this.prompts = new Map();      // prompt id -> {seq, changedAt, mode, startedAt, serverStart, cancelled, ...}
        this.inflight = new Set();     // our prompt ids the server has not finished
        this.latest = null;            // prompt id of the newest queued graph
        this.shown = { seq: -1, frame: -1 };
        this.pendingMeta = null;       // the frame announcement waiting for its binary message
        this.seenKey = null;
        this.changedAt = 0;            // the newest edit
        this.firstChangeAt = null;     // the first edit not queued yet (for the max wait)
        this.runMs = [];               // server compute time of the last runs that made a frame, ms
        this.leadMs = null;            // a refresh comes this long before the running prompt's expected end
        this.timer = null;
        this.idleTimer = null;
        this.queuing = false;          // a queueLatest is under way
        this.queueAgain = false;
        this.poll = null;
        this.checking = false;
        this.recheck = false;
        this.frames = new Map();       // node id -> {bitmap, meta}
        this.frameTimes = [];
        this.latencyMs = null;
        this.computeMs = null;
        this.error = null;
        this.stats = { queued: 0, cancelled: 0, interrupted: 0, kept: 0, frames: 0, dropped: 0, errors: 0, rejected: 0 };
        this.history = [];             // shown frames, newest last (bounded): for the readout and for tests
        this.inputAt = null;           // the first input event not seen as a change yet (its time)
        // Check at once (a typed character is in the widget by now) and once more after the frontend's own
        // handlers ran (widgets that update later); the poll catches the rest.
        this.onInput = (e) => {
            this.inputAt ??= Math.min(e.timeStamp || Infinity, performance.now());
            this.check();
            setTimeout(() => this.check(), 0);
        };
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
        this.runMs = [];               // another workflow may run at another speed
        this.leadMs = null;
        this.firstChangeAt = null;
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
        clearTimeout(this.idleTimer);
        this.poll = this.timer = this.idleTimer = null;
        this.firstChangeAt = null;
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
            if (key === this.seenKey && this.inputAt != null && performance.now() - this.inputAt > 1000)
                this.inputAt = null;   // an input event that changed nothing (a search box)
            if (key !== this.seenKey) {
                this.seenKey = key;
                this.changedAt = this.inputAt ?? performance.now();   // latency counts from the keystroke
                this.inputAt = null;
                this.firstChangeAt ??= this.changedAt;
                clearTimeout(this.idleTimer);
                this.schedule();
            }
        } catch (e) {
            this.showError(`live: ${e?.message ?? e}`);
        } finally {
            this.checking = false;
            if (this.recheck) { this.recheck = false; setTimeout(() => this.check(), 0); }
        }
    }

    // The expected run time: the shortest of the last runs (the first run after switching live on also
    // loads models, so the shortest, not the mean); null until a run made a frame.
    expectedRunMs() {
        return this.runMs.length ? Math.min(...this.runMs) : null;
    }

    // When to queue the newest graph. After a pause in the edits: a debounce after the last edit ("pause").
    // While edits go on without a pause (the max wait):
    // - server idle, or one of ours running with none queued behind it: a debounce after the first unqueued
    //   edit ("next"); the new prompt waits in the queue, so the server goes on with it without a gap;
    // - one of ours running and one queued behind it: once per run, shortly before the running one is
    //   expected to end, the queued one is swapped for the newest graph ("refresh"), so the next frame shows
    //   fresher text. The lead is learnt: if the old one had already started, the swap comes earlier next time.
    // - otherwise (ours queued behind someone else's prompt): the debounce only.
    schedule() {
        if (!this.on || this.firstChangeAt == null) return;
        const now = performance.now();
        const debounce = debounceMs();
        const earliest = this.firstChangeAt + debounce;
        let fireAt = this.changedAt + debounce, mode = "pause";
        const expected = this.expectedRunMs();
        if (expected != null) {
            const { running, waiting } = this.ourQueue();
            let at = null;
            if (!waiting) at = earliest;
            else if (running && !running.refreshed) {
                this.leadMs ??= expected / 4;
                at = Math.max(earliest, running.startedAt + expected - this.leadMs);
            }
            if (at != null && at < fireAt) {
                fireAt = at;
                mode = waiting ? "refresh" : "next";
            }
        }
        clearTimeout(this.timer);
        // Due now: queue in this task. (While you type, the browser runs input and drawing before timers, so
        // a zero timeout can wait for a second.)
        if (fireAt <= now) this.queueLatest(this.changedAt, mode);
        else this.timer = setTimeout(() => this.queueLatest(this.changedAt, mode), fireAt - now);
    }

    // Our prompt the server runs now (the newest started one) and whether one of ours waits in its queue.
    ourQueue() {
        let running = null, waiting = false;
        for (const id of this.inflight) {
            const p = this.prompts.get(id);
            if (!p || p.cancelled) continue;
            if (!p.startedAt) waiting = true;
            else if (!running || p.seq > running.seq) running = p;
        }
        return { running, waiting };
    }

    // The edits stopped (interruptIfIdle): a stale run of ours is interrupted while in the first half of its
    // expected run time; later, its frame comes sooner than the newest prompt's could, so it finishes.
    shouldInterrupt(p, now) {
        const expected = this.expectedRunMs();
        return expected == null || now - p.startedAt < expected / 2;
    }

    interruptIfIdle(changedAt) {
        if (!this.on || this.changedAt !== changedAt || this.firstChangeAt != null) return;
        const latest = this.prompts.get(this.latest);
        if (!latest || latest.startedAt || latest.cancelled || !this.inflight.has(this.latest)) return;
        const now = performance.now();
        for (const id of [...this.inflight]) {
            const p = this.prompts.get(id);
            if (p && p !== latest && p.startedAt && !p.cancelled && this.shouldInterrupt(p, now)) this.cancel(id, true);
        }
    }

    // One queuing at a time, until the prompt it replaces is withdrawn: on a busy server, requests are slow,
    // and queuing faster than withdrawing would let replaced prompts run too. A fire meanwhile waits for it.
    async queueLatest(changedAt, mode = "pause") {
        if (!this.on) return;
        if (this.queuing) { this.queueAgain = true; return; }
        this.queuing = true;
        try {
            await this.queueGraph(changedAt, mode);
        } finally {
            this.queuing = false;
            if (this.queueAgain) { this.queueAgain = false; this.schedule(); }
        }
    }

    async queueGraph(changedAt, mode) {
        this.firstChangeAt = null;
        const targets = livePreviewNodes().map((n) => String(n.id));
        const { output } = await app.graphToPrompt();
        const id = uuid4();
        const stale = [...this.inflight];
        if (mode === "refresh") {
            const { running } = this.ourQueue();
            if (running) running.refreshed = true;
        }
        this.prompts.set(id, { seq: ++this.seq, changedAt, mode, startedAt: null, serverStart: null, cancelled: false });
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
        // Withdraw the replaced prompt that still waits only now, so the server goes straight on with the new
        // one; a running one goes on (until the edits stop: interruptIfIdle).
        const withdrawals = [];
        for (const old of stale) {
            const p = this.prompts.get(old);
            if (!p || p.cancelled) continue;
            if (!p.startedAt) withdrawals.push(this.cancel(old, false, mode));
            else this.stats.kept++;
        }
        await Promise.all(withdrawals);
        if (this.firstChangeAt == null && this.changedAt === changedAt) {
            const wait = Math.max(PAUSE_MS, 2 * debounceMs());
            clearTimeout(this.idleTimer);
            this.idleTimer = setTimeout(() => this.interruptIfIdle(changedAt),
                                        Math.max(0, changedAt + wait - performance.now()));
        }
    }

    // Remove from the queue if still waiting; with `interrupt`, also interrupt it if it runs (the server
    // ignores an interrupt for a prompt it does not run). Without, a prompt that started meanwhile runs on.
    cancel(id, interrupt = true, by = null) {
        const p = this.prompts.get(id);
        if (!p || p.cancelled) return Promise.resolve();
        p.cancelled = true;
        p.withdrawn = interrupt ? null : by ?? "withdraw";
        this.stats.cancelled++;
        if (p.startedAt) this.stats.interrupted++;
        const post = (path, body) => api.fetchApi(path, {
            method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        }).catch(() => {});
        return post("/queue", { delete: [id] })
            .then(() => interrupt && post("/interrupt", { prompt_id: id }))
            .then(() => {
                // Never started: it was removed from the queue and no execution event will come for it.
                // (Had it started meanwhile, the interrupt ends it and execution_interrupted arrives.)
                if (!p.startedAt) this.inflight.delete(id);
            });
    }

    // ---- server events ----

    onStart(id, serverTimestamp) {
        const p = this.prompts.get(id);
        if (!p) return;
        p.startedAt = performance.now();
        p.serverStart = Number.isFinite(serverTimestamp) ? serverTimestamp : null;
        if (p.withdrawn) {
            // Withdrawn too late (the server had started it): it runs, and its frame still shows, as the
            // newest yet. When a refresh came too late, the next one comes earlier.
            const expected = this.expectedRunMs();
            if (p.withdrawn === "refresh" && expected != null && this.leadMs != null)
                this.leadMs = Math.min(expected, this.leadMs + expected / 8);
            p.cancelled = false;
            p.withdrawn = null;
            this.stats.cancelled--;
            this.inflight.add(id);
        } else if (p.mode === "refresh" && this.leadMs != null) {
            this.leadMs *= 0.95;           // on time: a little later next time (fresher text)
        }
        this.schedule();                   // the max wait is planned from the running prompt
    }

    onFinished(id, kind, detail) {
        const p = this.prompts.get(id);
        if (!p) return;
        this.inflight.delete(id);
        // A live run is a draft: keep it out of the queue panel's history (one per keystroke otherwise), and
        // the history the frontend fetches after every run small.
        api.fetchApi("/history", { method: "POST", headers: { "Content-Type": "application/json" },
                                   body: JSON.stringify({ delete: [id] }) }).catch(() => {});
        this.schedule();       // the server may be idle now: an edit waiting for the max wait goes sooner
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
        // compute: the run on the server's clock (execution_start .. frame sent), else as seen here
        const sentAt = meta.timings?.sent_at_ms;
        this.computeMs = p.serverStart != null && Number.isFinite(sentAt) ? sentAt - p.serverStart
            : p.startedAt ? arrivedAt - p.startedAt : null;
        if (this.computeMs != null && this.computeMs >= 0 && !p.timed) {
            p.timed = true;
            pushBounded(this.runMs, this.computeMs);
        }
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
        api.addEventListener("execution_start", ({ detail }) => live.onStart(detail?.prompt_id, detail?.timestamp));
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
