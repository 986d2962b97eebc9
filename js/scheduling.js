// LCM Kit live mode, the scheduling: when to queue the newest graph, which stale prompt to withdraw or interrupt,
// which frame is newest. A pure ES module (no browser or frontend import; the clock, the transport and the graph
// are given): `node --test tests/js` runs its rules with a fake clock and a fake transport.
//
// Edits come as events, never from polling: a source (js/live.js's graph edits, a sketch's strokes, a camera) says
// `changed()`, and live mode re-queues the graph after a debounce (setting "LCMKit.Live.DebounceMs"), only up to
// the live targets (partial execution: Save Image nodes don't write a file per keystroke). The graph is serialized
// once per queuing; a queuing whose prompt equals the last one queued sends nothing (an event that changed nothing
// the server runs).
// While edits go on without a pause the debounce has a max wait, so the image follows the typing instead of waiting
// for it to stop, and the server never idles: one prompt runs, the next waits in the queue behind it, and shortly
// before the running one is expected to end (the shortest of the last few run times) the waiting one is swapped for
// the newest graph (withdrawn by prompt id). Queuing never interrupts a run while you type: the pauses between
// keystrokes are often longer than the debounce.
// Once the edits stop (no edit for PAUSE_MS, at least twice the debounce), a stale run that is in the first half of
// its expected run time is interrupted (by its prompt id), so the newest graph runs at once; later in its run, its
// frame comes sooner than the new one could, so it finishes. While a source streams (a camera) no run is cut short.
// Frames of older prompts than the one shown are dropped. A failed run's error, or the server's refusal of a prompt
// at queue time (HTTP 400: a mistake in the widget values), is kept for the view, and live mode goes on with the
// next edit.
import { FrameRate } from "./readout.js";

export const DEFAULT_DEBOUNCE_MS = 150;
const RUN_SAMPLES = 3;         // expected run time = the shortest of the last RUN_SAMPLES runs
const PAUSE_MS = 400;          // no edit for this long (and twice the debounce): the edits have stopped
const PROGRESS_AFTER_MS = 1000;    // a run's progress shows once it takes this long (or before the first frame)

function pushBounded(list, value, limit = RUN_SAMPLES) {
    list.push(value);
    if (list.length > limit) list.shift();
}

/** The browser's clock and timers. */
export const browserClock = {
    now: () => performance.now(),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (timer) => clearTimeout(timer),
};

export class LiveMode {
    /** graph: {targets() -> [{id}] (the ids the server runs the live nodes under), prompt() -> Promise<{output,
     *         workflow}>, nodeLabel(id) -> the name of the node the server runs under `id`, for progress};
     *  transport: {queue(output, workflow, targets, register) -> Promise<id>, withdraw(id), interrupt(id), forget(id)}
     *  (js/transport.js); onChange(): redraw the views; debounceMs(): the debounce setting; displayName(class_type):
     *  a node type's name as the user sees it, for error texts; clock: {now, setTimeout, clearTimeout};
     *  decode(blob) -> Promise<bitmap> (createImageBitmap). */
    constructor({ graph, transport, onChange, debounceMs, displayName, clock = browserClock, decode }) {
        this.graph = graph;
        this.transport = transport;
        this.onChange = onChange ?? (() => {});
        this.debounceMs = debounceMs ?? (() => DEFAULT_DEBOUNCE_MS);
        this.displayName = displayName ?? ((type) => type);
        this.clock = clock;
        this.decode = decode ?? ((blob) => createImageBitmap(blob));
        this.on = false;
        this.seq = 0;
        this.prompts = new Map();      // prompt id -> {seq, changedAt, mode, from, sources, startedAt, serverStart, ...}
        this.inflight = new Set();     // our prompt ids the server has not finished
        this.latest = null;            // prompt id of the newest queued graph (null when the server refused it)
        this.queuedKey = null;         // what the newest queuing sent (targets and prompt), to skip an unchanged one
        this.shown = { seq: -1, frame: -1 };
        this.changedAt = 0;            // the newest change
        this.changedBy = null;         // the source of the newest change
        this.firstChangeAt = null;     // the first change not queued yet (for the max wait)
        this.pending = new Set();      // sources whose changes are not queued yet
        this.sources = new Set();
        this.streams = new Set();      // sources that stream (a camera): see source()
        this.runMs = [];               // server compute time of the last runs that made a frame, ms
        this.leadMs = null;            // a refresh comes this long before the running prompt's expected end
        this.timer = null;
        this.idleTimer = null;
        this.queuing = false;          // a queueLatest is under way
        this.queueAgain = false;
        this.frames = new Map();       // node id -> {bitmap, meta, from}
        this.rate = new FrameRate();
        this.latencyMs = null;
        this.computeMs = null;
        this.error = null;
        this.progress = null;          // {promptId, node, value, max, since} of the run under way
        this.notices = new Map();      // what this frontend cannot do (compat probes): key -> text
        this.stats = { queued: 0, unchanged: 0, cancelled: 0, interrupted: 0, kept: 0, frames: 0, dropped: 0,
                       errors: 0, rejected: 0 };
    }

    isOurs(id) {
        return id != null && this.prompts.has(id);
    }

    // ---- sources ----

    /** A source of changes (graph edits, a sketch's strokes, a camera). Returns its handle:
     *  - changed(at): the source changed what the graph queues (at: when, on the clock; default now);
     *  - streaming(on): the source changes on its own (a camera): all its frames are wanted, so no run is cut short
     *    while it streams, and it is asked for its next change (`next`) whenever the server can take one;
     *  - remove().
     *  `callbacks` (each optional): sent({promptId}) once a prompt with its change is queued; frame({promptId,
     *  latencyMs, computeMs}) when that prompt's frame is shown; next({expectedRunMs}) (while streaming): nothing of
     *  ours waits in the queue or for its debounce, send the next change now or after expectedRunMs; stopped(): live
     *  mode went off. */
    source(callbacks = {}) {
        const src = { callbacks, streaming: false };
        this.sources.add(src);
        return {
            changed: (at) => this.changed(src, at),
            streaming: (on) => this.setStreaming(src, !!on),
            remove: () => { this.setStreaming(src, false); this.sources.delete(src); this.pending.delete(src); },
        };
    }

    changed(src, at) {
        if (!this.on) return;
        const now = this.clock.now();
        const when = Math.min(Number.isFinite(at) ? at : now, now);
        if (when >= this.changedAt) {
            this.changedAt = when;         // latency counts from the change (a keystroke's event time)
            this.changedBy = src;
        }
        this.firstChangeAt ??= when;
        if (src) this.pending.add(src);
        this.clock.clearTimeout(this.idleTimer);
        this.schedule();
    }

    setStreaming(src, on) {
        if (src.streaming === on) return;
        src.streaming = on;
        if (on) this.streams.add(src);
        else this.streams.delete(src);
        if (on) this.offerNext();
    }

    // A stream is asked for its next change when the server can take one: live on, nothing of ours waiting in the
    // queue, for its debounce or being queued. (Asking while a change waits for its debounce would restart the
    // debounce with every camera frame, and nothing would be queued.)
    offerNext() {
        if (!this.on || !this.streams.size || this.queuing || this.firstChangeAt != null) return;
        if (this.ourQueue().waiting) return;
        const info = { expectedRunMs: this.expectedRunMs() };
        for (const src of [...this.streams]) src.callbacks.next?.(info);
    }

    /** A line that the Live Preview nodes show (what this frontend cannot do); text "" removes it. */
    setNotice(key, text) {
        if (text) this.notices.set(key, text);
        else this.notices.delete(key);
        this.onChange();
    }

    // ---- on / off ----

    setLive(on) {
        if (on === this.on) return;
        on ? this.start() : this.stop();
    }

    start() {
        this.on = true;
        this.error = null;
        this.rate.reset();
        this.runMs = [];               // another workflow may run at another speed
        this.leadMs = null;
        this.firstChangeAt = null;
        this.queuedKey = null;
        this.onChange();
        this.changed(null);            // queue the graph as it is
    }

    stop() {
        this.on = false;
        this.clock.clearTimeout(this.timer);
        this.clock.clearTimeout(this.idleTimer);
        this.timer = this.idleTimer = null;
        this.firstChangeAt = null;
        this.pending.clear();
        for (const id of [...this.inflight]) this.cancel(id);
        for (const src of [...this.sources]) src.callbacks.stopped?.();
        this.onChange();
    }

    /** True while a change waits for its debounce (not queued yet). */
    editPending() {
        return this.firstChangeAt != null;
    }

    // The expected run time: the shortest of the last runs (the first run after switching live on also loads
    // models, so the shortest, not the mean); null until a run made a frame.
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
        const now = this.clock.now();
        const debounce = this.debounceMs();
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
        this.clock.clearTimeout(this.timer);
        // Due now: queue in this task. (While you type, the browser runs input and drawing before timers, so
        // a zero timeout can wait for a second.)
        if (fireAt <= now) this.queueLatest(this.changedAt, mode);
        else this.timer = this.clock.setTimeout(() => this.queueLatest(this.changedAt, mode), fireAt - now);
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
        if (this.streams.size) return;   // a stream's frames are all wanted: a stale run is never cut short
        const latest = this.prompts.get(this.latest);
        if (!latest || latest.startedAt || latest.cancelled || !this.inflight.has(this.latest)) return;
        const now = this.clock.now();
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
        } catch (e) {
            this.showError(`live: ${e?.message ?? e}`);
        } finally {
            this.queuing = false;
            if (this.queueAgain) { this.queueAgain = false; this.schedule(); }
            this.offerNext();
        }
    }

    async queueGraph(changedAt, mode) {
        this.firstChangeAt = null;
        const sources = [...this.pending];
        this.pending.clear();
        const from = this.changedBy?.streaming ? "capture" : "edit";
        const targets = this.graph.targets().map((n) => String(n.id));
        if (!targets.length) { this.stop(); return; }   // no Live Preview left (removed, muted or bypassed)
        const { output, workflow } = await this.graph.prompt();
        if (!this.on) return;
        const key = JSON.stringify([targets, output]);
        if (key === this.queuedKey) { this.stats.unchanged++; return; }   // nothing the server runs changed
        this.queuedKey = key;
        const stale = [...this.inflight];
        const entry = { seq: ++this.seq, changedAt, mode, from, sources, startedAt: null, serverStart: null,
                        cancelled: false };
        this.stats.queued++;
        let queued = null;
        try {
            queued = await this.transport.queue(output, workflow, targets, (id) => {
                if (mode === "refresh") {
                    const { running } = this.ourQueue();
                    if (running) running.refreshed = true;
                }
                this.prompts.set(id, entry);
                this.latest = id;
                this.track(id);
                if (!this.on) this.cancel(id);     // switched off while the request was under way
            });
        } catch (e) {
            if (e?.rejected) {
                // Refused at queue time: nothing of it will run; the newest graph has no prompt (an older
                // run's frame or success then keeps the error shown) until the next edit queues one.
                this.stats.rejected++;
                this.latest = null;
            }
            this.showError(e?.message ?? String(e));
        }
        if (queued) for (const src of sources) src.callbacks.sent?.({ promptId: queued });
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
            const wait = Math.max(PAUSE_MS, 2 * this.debounceMs());
            this.clock.clearTimeout(this.idleTimer);
            this.idleTimer = this.clock.setTimeout(() => this.interruptIfIdle(changedAt),
                                                   Math.max(0, changedAt + wait - this.clock.now()));
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
        return Promise.resolve(this.transport.withdraw(id))
            .then(() => interrupt && this.transport.interrupt(id))
            .then(() => {
                // Never started: it was removed from the queue and no execution event will come for it.
                // (Had it started meanwhile, the interrupt ends it and execution_interrupted arrives.)
                if (!p.startedAt) this.untrack(id);
            });
    }

    // The in-flight set, and with it the readout's active clock (fps counts only time with a prompt in flight).
    track(id) {
        this.inflight.add(id);
        this.rate.setBusy(true, this.clock.now());
    }

    untrack(id) {
        this.inflight.delete(id);
        if (!this.inflight.size) this.rate.setBusy(false, this.clock.now());
        this.offerNext();
    }

    // ---- server events (from the transport) ----

    onStart(id, serverTimestamp) {
        const p = this.prompts.get(id);
        if (!p) return;
        p.startedAt = this.clock.now();
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
            this.track(id);
        } else if (p.mode === "refresh" && this.leadMs != null) {
            this.leadMs *= 0.95;           // on time: a little later next time (fresher text)
        }
        this.schedule();                   // the max wait is planned from the running prompt
        this.offerNext();                  // nothing of ours may wait now: a stream sends its next change
    }

    /** Progress of any prompt this page queued (a live run or a normal Run): `node` (the id it runs) started, or
     *  reached step `value` of `max`; `node` null: the prompt ended. */
    onProgress(id, { node, value = null, max = null }) {
        if (node == null) {
            if (this.progress?.promptId === id) { this.progress = null; this.onChange(); }
            return;
        }
        const now = this.clock.now();
        const since = this.progress?.promptId === id ? this.progress.since : now;
        this.progress = { promptId: id, node: this.graph.nodeLabel?.(String(node)) ?? `#${node}`, value, max, since };
        this.onChange();
    }

    onFinished(id, kind, detail) {
        if (this.progress?.promptId === id) { this.progress = null; this.onChange(); }
        const p = this.prompts.get(id);
        if (!p || p.finished) return;      // (a live error reaches the rest of the frontend as "interrupted")
        p.finished = true;
        this.untrack(id);
        // A live run is a draft: keep it out of the queue panel's history (one per keystroke otherwise), and
        // the history the frontend fetches after every run small.
        this.transport.forget(id);
        this.schedule();       // the server may be idle now: an edit waiting for the max wait goes sooner
        if (kind === "error") {
            this.stats.errors++;
            if (id === this.latest || p.seq >= this.shown.seq) {
                const where = detail?.node_type ? `${this.displayName(detail.node_type)}${detail.node_id != null ? ` #${detail.node_id}` : ""}` : "error";
                this.showError(`${where}: ${detail?.exception_message ?? "failed"}`.trim());
            }
        } else if (kind === "success" && id === this.latest) {
            this.error = null;
            this.onChange();
        } else if (kind === "interrupted" && id === this.latest && !p.cancelled && this.on) {
            // Interrupted by someone else (or a race with our own cancel): run the current graph again.
            this.queuedKey = null;
            this.changed(null);
        }
        // Forget old prompts; keep the map small over long sessions.
        for (const [pid, q] of this.prompts) {
            if (q.seq < this.seq - 50 && !this.inflight.has(pid)) this.prompts.delete(pid);
        }
    }

    async onFrame(meta, blob) {
        const p = this.prompts.get(meta?.prompt_id);
        if (!p) return this.onRunFrame(meta, blob);
        if (!this.on || this.isStale(p, meta)) { this.stats.dropped++; return; }
        const arrivedAt = this.clock.now();
        const bitmap = await this.decode(blob);
        if (!this.on || this.isStale(p, meta)) { bitmap?.close?.(); this.stats.dropped++; return; }
        this.shown = { seq: p.seq, frame: meta.frame };
        this.showFrame(meta, bitmap, p.from);
        this.stats.frames++;
        this.rate.frame(arrivedAt);
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
        for (const src of p.sources ?? []) {
            src.callbacks.frame?.({ promptId: meta.prompt_id, latencyMs: this.latencyMs, computeMs: this.computeMs });
        }
        this.onChange();
    }

    // A frame of a prompt live mode did not queue: a normal Run (the Live Preview shows its image as Preview Image
    // does) while live is off; while live is on, live frames own the view.
    async onRunFrame(meta, blob) {
        const shown = this.frames.get(String(meta?.node));
        if (this.on || !meta || (shown && shown.meta?.frame >= meta.frame)) { this.stats.dropped++; return; }
        const bitmap = await this.decode(blob);
        if (this.on) { bitmap?.close?.(); return; }
        this.showFrame(meta, bitmap, "run");
        this.onChange();
    }

    showFrame(meta, bitmap, from) {
        const node = String(meta.node);
        this.frames.get(node)?.bitmap?.close?.();   // the views keep their pixels
        this.frames.set(node, { bitmap, meta, from });
    }

    /** Forget the frame of a removed Live Preview node. */
    forgetNode(nodeId) {
        this.frames.get(String(nodeId))?.bitmap?.close?.();
        this.frames.delete(String(nodeId));
    }

    isStale(p, meta) {
        return p.seq < this.shown.seq || (p.seq === this.shown.seq && meta.frame <= this.shown.frame);
    }

    /** Frames per second over the last few seconds of activity (js/readout.js); null before two frames. */
    fps() {
        return this.rate.fps(this.clock.now());
    }

    showError(message) {
        this.error = message;
        this.onChange();
    }

    /** The run's progress: of a normal Run (live off) always; of live runs while a view waits for its first frame
     *  or once a run takes a while (a fast run's progress would only flicker). */
    visibleProgress(frame) {
        const p = this.progress;
        if (!p) return null;
        return !this.on || !frame || this.clock.now() - p.since >= PROGRESS_AFTER_MS ? p : null;
    }

    /** What a view shows for the node `nodeId`. */
    viewState(nodeId) {
        const frame = this.frames.get(String(nodeId)) ?? null;
        return { on: this.on, fps: this.on ? this.fps() : null, latencyMs: this.latencyMs, computeMs: this.computeMs,
                 latencyFrom: frame?.from ?? "edit", error: this.error, frame, progress: this.visibleProgress(frame),
                 notices: [...this.notices.values()] };
    }
}
