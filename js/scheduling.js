// LCM Kit live mode, the scheduling: when to queue the newest graph, which stale prompt to withdraw or
// interrupt, which frame is newest. A helper module: importing it registers nothing (js/live.js wires it to
// the graph, the transport and the view; sketch and camera inputs can do the same).
//
// While live is on, every change of what the graph would queue (widget values, modes, links, also inside
// subgraphs) re-queues it after a debounce (setting "LCMKit.Live.DebounceMs"), only up to the live targets
// (partial execution: Save Image nodes don't write a file per keystroke). While edits go on without a pause
// the debounce has a max wait, so the image follows the typing instead of waiting for it to stop, and the
// server never idles: one prompt runs, the next waits in the queue behind it, and shortly before the running
// one is expected to end (the shortest of the last few run times) the waiting one is swapped for the newest
// graph (withdrawn by prompt id). Queuing never interrupts a run while you type: the pauses between
// keystrokes are often longer than the debounce.
// Once the edits stop (no edit for PAUSE_MS, at least twice the debounce), a stale run that is in the first
// half of its expected run time is interrupted (by its prompt id), so the newest graph runs at once; later in
// its run, its frame comes sooner than the new one could, so it finishes.
// Frames of older prompts than the one shown are dropped. A failed run's error, or the server's refusal of a
// prompt at queue time (HTTP 400: a mistake in the widget values), is kept for the view, and live mode goes on
// with the next edit.

export const DEFAULT_DEBOUNCE_MS = 150;
const POLL_MS = 100;           // catches changes that fire no DOM event (canvas widgets, links)
const FPS_WINDOW_MS = 60000;
const FPS_FRAMES = 10;
const HISTORY_LIMIT = 500;
const RUN_SAMPLES = 3;         // expected run time = the shortest of the last RUN_SAMPLES runs
const PAUSE_MS = 400;          // no edit for this long (and twice the debounce): the edits have stopped

function pushBounded(list, value, limit = RUN_SAMPLES) {
    list.push(value);
    if (list.length > limit) list.shift();
}

/** What a re-queue depends on in a serialized workflow: widget values, modes and links of the nodes, and
 *  the same inside subgraph definitions; not positions, sizes or selection. */
export function workflowKey(wf) {
    const nodeKey = (nodes) => (nodes ?? [])
        .map((n) => [n.id, n.type, n.mode, n.widgets_values, (n.inputs ?? []).map((i) => i.link)])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    const subgraphs = (wf.definitions?.subgraphs ?? []).map((s) => [s.id, nodeKey(s.nodes), s.links]);
    return JSON.stringify([nodeKey(wf.nodes), wf.links, subgraphs]);
}

export class LiveMode {
    /** graph: {targets() -> [{id}] (the ids the server runs the live nodes under), key() -> string,
     *         prompt() -> Promise<{output, workflow}>}
     *  transport: a LiveTransport; onChange(): redraw the views; debounceMs(): the debounce setting;
     *  displayName(class_type): a node type's name as the user sees it, for error texts. */
    constructor({ graph, transport, onChange, debounceMs, displayName }) {
        this.graph = graph;
        this.transport = transport;
        this.onChange = onChange ?? (() => {});
        this.debounceMs = debounceMs ?? (() => DEFAULT_DEBOUNCE_MS);
        this.displayName = displayName ?? ((type) => type);
        this.on = false;
        this.seq = 0;
        this.prompts = new Map();      // prompt id -> {seq, changedAt, mode, startedAt, serverStart, cancelled, ...}
        this.inflight = new Set();     // our prompt ids the server has not finished
        this.latest = null;            // prompt id of the newest queued graph (null when the server refused it)
        this.shown = { seq: -1, frame: -1 };
        this.seenKey = null;
        this.changedAt = 0;            // the newest edit
        this.firstChangeAt = null;     // the first edit not queued yet (for the max wait)
        this.streams = new Set();      // sources that edit on their own (a camera): see interruptIfIdle
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

    isOurs(id) {
        return id != null && this.prompts.has(id);
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
        this.onChange();
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
        this.onChange();
    }

    async check() {
        if (!this.on) return;
        if (this.checking) { this.recheck = true; return; }
        this.checking = true;
        try {
            if (!this.graph.targets().length) { this.stop(); return; }
            const key = this.graph.key();
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

    /** True while an edit waits for its debounce (not queued yet). */
    editPending() {
        return this.firstChangeAt != null;
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
        if (this.streams.size) return;   // a stream's frames are all wanted: a stale run is never cut short
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
        const targets = this.graph.targets().map((n) => String(n.id));
        const { output, workflow } = await this.graph.prompt();
        const stale = [...this.inflight];
        const entry = { seq: ++this.seq, changedAt, mode, startedAt: null, serverStart: null, cancelled: false };
        this.stats.queued++;
        try {
            await this.transport.queue(output, workflow, targets, (id) => {
                if (mode === "refresh") {
                    const { running } = this.ourQueue();
                    if (running) running.refreshed = true;
                }
                this.prompts.set(id, entry);
                this.latest = id;
                this.inflight.add(id);
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
        return this.transport.withdraw(id)
            .then(() => interrupt && this.transport.interrupt(id))
            .then(() => {
                // Never started: it was removed from the queue and no execution event will come for it.
                // (Had it started meanwhile, the interrupt ends it and execution_interrupted arrives.)
                if (!p.startedAt) this.inflight.delete(id);
            });
    }

    // ---- server events (from the transport) ----

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
        if (!p || p.finished) return;      // (a live error reaches the rest of the frontend as "interrupted")
        p.finished = true;
        this.inflight.delete(id);
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
            this.seenKey = null;
            this.check();
        }
        // Forget old prompts; keep the map small over long sessions.
        for (const [pid, q] of this.prompts) {
            if (q.seq < this.seq - 50 && !this.inflight.has(pid)) this.prompts.delete(pid);
        }
    }

    async onFrame(meta, blob) {
        const p = this.prompts.get(meta?.prompt_id);
        if (!this.on || !p || this.isStale(p, meta)) { this.stats.dropped++; return; }
        const arrivedAt = performance.now();
        const bitmap = await createImageBitmap(blob);
        if (!this.on || this.isStale(p, meta)) { bitmap.close?.(); this.stats.dropped++; return; }
        this.shown = { seq: p.seq, frame: meta.frame };
        this.frames.get(String(meta.node))?.bitmap?.close?.();   // the views keep their pixels
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
        this.onChange();
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
        this.onChange();
    }

    /** What a view shows for the node `nodeId`. */
    viewState(nodeId) {
        return { on: this.on, fps: this.on ? this.fps() : null, latencyMs: this.latencyMs,
                 computeMs: this.computeMs, error: this.error, frame: this.frames.get(String(nodeId)) ?? null };
    }
}
