// LCM Kit live mode, the readouts: frames per second over the last few seconds of activity, and the readout line a
// Live Preview node shows. A pure ES module (no browser, no frontend import): `node --test tests/js` runs it.

export const FPS_WINDOW_MS = 5000;

/** Frames per second over the frames of the last FPS_WINDOW_MS of activity: time counts only while `busy` (a live
 *  prompt in flight), so a pause in the edits never lowers the rate. With fewer than two frames in that window, the
 *  last two frames give the rate (a slow machine shows its real rate, not nothing). */
export class FrameRate {
    constructor(windowMs = FPS_WINDOW_MS) {
        this.windowMs = windowMs;
        this.reset();
    }

    reset() {
        this.activeMs = 0;          // busy time before busySince
        this.busySince = null;
        this.frames = [];           // active-clock time of each frame, oldest first
    }

    /** The active clock at `now`: busy milliseconds so far. */
    active(now) {
        return this.activeMs + (this.busySince != null ? now - this.busySince : 0);
    }

    /** Busy (a prompt in flight) or idle from `now` on. */
    setBusy(busy, now) {
        if (busy && this.busySince == null) this.busySince = now;
        else if (!busy && this.busySince != null) {
            this.activeMs += now - this.busySince;
            this.busySince = null;
        }
    }

    frame(now) {
        this.frames.push(this.active(now));
        if (this.frames.length > 200) this.frames.splice(0, this.frames.length - 200);
    }

    /** fps at `now`, or null before two frames. */
    fps(now) {
        const t = this.active(now);
        let recent = this.frames.filter((f) => t - f <= this.windowMs);
        if (recent.length < 2) recent = this.frames.slice(-2);
        if (recent.length < 2) return null;
        return (recent.length - 1) * 1000 / Math.max(1, recent.at(-1) - recent[0]);
    }
}

/** 850 ms, 1.2 s, 12 s: a duration as a user reads it. */
export function formatDuration(ms) {
    if (ms == null || !Number.isFinite(ms)) return "–";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    return ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** "step 2 of 4 · LCM Sampler #6" for progress {node, value, max}, "LCM Sampler #6" before the node's first step. */
export function progressText(progress) {
    if (!progress) return "";
    const parts = [];
    if (Number.isFinite(progress.max) && progress.max > 0) parts.push(`step ${progress.value} of ${progress.max}`);
    if (progress.node) parts.push(progress.node);
    return parts.join(" · ");
}

/** The readout line for a view state {on, fps, latencyMs, computeMs, latencyFrom ("edit" | "capture" | "run"),
 *  hasFrame, progress}. */
export function readoutText({ on, fps, latencyMs, computeMs, latencyFrom = "edit", hasFrame, progress }) {
    const running = progressText(progress);
    if (!on) {
        const off = "live off · switch live on and the image follows your edits";
        return running ? `running: ${running} · ${off}` : off;
    }
    const parts = ["● live"];
    if (fps != null) parts.push(`${fps < 1 ? fps.toFixed(2) : fps.toFixed(1)} fps`);
    if (!hasFrame) parts.push("waiting for the first frame");
    else if (latencyFrom === "run") parts.push("the last Run's image");
    else if (latencyMs != null) {
        let text = `frame ${formatDuration(latencyMs)} after ${latencyFrom === "capture" ? "capture" : "your edit"}`;
        if (computeMs != null) text += ` (run ${formatDuration(computeMs)})`;
        parts.push(text);
    }
    if (running) parts.push(`running: ${running}`);
    return parts.join(" · ");
}
