// Fakes for the unit tests of js/scheduling.js: a clock whose time moves only when a test says so, a transport that
// records what live mode asks of the server, and a graph with one Live Preview target.

/** Time in ms that moves only with advance(); timers run in time order as it passes them. */
export class FakeClock {
    constructor() {
        this.t = 1000;
        this.timers = new Map();
        this.nextId = 1;
        this.now = () => this.t;
        this.setTimeout = (fn, ms) => {
            const id = this.nextId++;
            this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
            return id;
        };
        this.clearTimeout = (id) => { this.timers.delete(id); };
    }

    /** Move time forward by `ms`, running each timer that falls due (and the promises it starts) on the way. */
    async advance(ms) {
        const end = this.t + ms;
        for (;;) {
            const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
            if (!due) break;
            this.timers.delete(due[0]);
            this.t = due[1].at;
            due[1].fn();
            await settle();
        }
        this.t = end;
        await settle();
    }
}

/** Let every pending promise callback run. */
export function settle() {
    return new Promise((resolve) => setImmediate(resolve));
}

/** Records queue / withdraw / interrupt / forget; prompt ids p1, p2, … in queuing order. `refuse` makes the next
 *  queue throw as a server's HTTP 400 does (transport.js: an Error with `rejected`). */
export class FakeTransport {
    constructor() {
        this.queued = [];      // {id, output, targets}
        this.withdrawn = [];
        this.interrupted = [];
        this.forgotten = [];
        this.refuse = null;
    }

    async queue(output, workflow, targets, register) {
        if (this.refuse) {
            const error = Object.assign(new Error(this.refuse), { rejected: true });
            this.refuse = null;
            throw error;
        }
        const id = `p${this.queued.length + 1}`;
        this.queued.push({ id, output, targets });
        register(id);
        return id;
    }

    async withdraw(id) { this.withdrawn.push(id); }
    async interrupt(id) { this.interrupted.push(id); }
    async forget(id) { this.forgotten.push(id); }
}

/** A graph whose prompt is {text}: set `graph.text` to edit it. */
export function fakeGraph(text = "a fox") {
    const graph = {
        text,
        targets: () => [{ id: "8" }],
        prompt: async () => ({ output: { 3: { inputs: { text: graph.text } }, 8: { inputs: { images: ["3", 0] } } },
                               workflow: {} }),
        nodeLabel: (id) => `Node #${id}`,
    };
    return graph;
}

/** A frame announcement as nodes/live_nodes.py sends it. */
export function frameMeta(promptId, frame, sentAt = null) {
    return { prompt_id: promptId, node: "8", frame, width: 64, height: 64,
             timings: sentAt == null ? {} : { sent_at_ms: sentAt } };
}

export const fakeBitmap = async () => ({ width: 64, height: 64, close() {} });
