// LCM Kit live mode, the transport: queue a prompt, withdraw or interrupt it, forget it in the history, and
// the server's events about our prompts (start, end, frames). A helper module: importing it registers
// nothing; `LiveTransport.listen()` subscribes.
//
// Prompts are queued through the frontend's own `api.queuePrompt` (what the Run button ends in), so other
// extensions that wrap it see live prompts too. Not `app.queuePrompt`: it applies the widgets' "control after
// generate" (a randomized seed would change the graph after every live run and queue the next one forever),
// shows a modal dialog when the server rejects a prompt, and does not return the prompt id.
// The server names the prompt id; an event for a prompt id not known yet, while a queue request is under way,
// is held until that request returns (the websocket can be faster than the HTTP answer).
// A failed live run shows its error on the Live Preview node, not in the frontend's modal error dialog: the
// `execution_error` of a live prompt goes to live mode only, and the rest of the frontend gets an
// `execution_interrupted` for that prompt (it ends its progress state the same way). A normal Run is untouched.
// A prompt the server refuses at queue time (HTTP 400 with node_errors) is not shown by the frontend at all
// (`api.queuePrompt` only throws; the dialog comes from `app.queuePrompt`): `queue` throws its text.
import { api } from "../../scripts/api.js";
import { wrapEventDispatch } from "./compat.js";

export const FRAME_EVENT = "lcm_kit.live_frame";
const HELD_EVENTS = new Set(["execution_start", "execution_success", "execution_error", "execution_interrupted",
                             "execution_cached", "executing", "executed", "progress"]);

/** The text of a rejected prompt (the /prompt answer's node errors, else its error), one line per node with its
 *  display name (`displayName(class_type)`) and each distinct message once. */
export function describeQueueError(body, displayName = (type) => type) {
    const nodes = Object.entries(body?.node_errors ?? {}).flatMap(([id, e]) => {
        const texts = [...new Set((e?.errors ?? []).map((r) => r?.details || r?.message).filter(Boolean))];
        return texts.length ? [`${displayName(e.class_type)} #${id}: ${texts.join("; ")}`] : [];
    });
    if (nodes.length) return nodes.join(" — ");
    return [body?.error?.message, body?.error?.details].filter(Boolean).join(": ") || "the prompt was rejected";
}

export class LiveTransport {
    /** handlers: {isOurs(id), onStart(id, timestamp), onFinished(id, kind, detail), onFrame(meta, blob)};
     *  displayName(class_type): a node type's name as the user sees it, for error texts. */
    constructor(handlers, displayName = (type) => type) {
        this.handlers = handlers;
        this.displayName = displayName;
        this.posting = 0;              // queue requests under way
        this.held = [];                // events for prompt ids not known yet, while posting
        this.heldFrames = [];          // frames of such prompts
        this.pendingMeta = null;       // the frame announcement waiting for its binary message
        this.listening = false;
    }

    listen() {
        if (this.listening) return;
        this.listening = true;
        const h = this.handlers;
        api.addEventListener(FRAME_EVENT, ({ detail }) => { this.pendingMeta = detail; });
        api.addEventListener("b_preview", ({ detail }) => {
            const meta = this.pendingMeta;
            if (!meta) return;                 // a sampler's latent preview, not ours
            this.pendingMeta = null;
            if (this.posting > 0 && !h.isOurs(meta.prompt_id)) this.heldFrames.push([meta, detail]);
            else h.onFrame(meta, detail);
        });
        api.addEventListener("execution_start", ({ detail }) => h.onStart(detail?.prompt_id, detail?.timestamp));
        api.addEventListener("execution_success", ({ detail }) => h.onFinished(detail?.prompt_id, "success", detail));
        api.addEventListener("execution_interrupted", ({ detail }) =>
            h.onFinished(detail?.prompt_id, "interrupted", detail));
        // Our prompts' errors: to live mode, not to the frontend's modal dialog (see above).
        const transport = this;
        wrapEventDispatch(api, (dispatch) => function (type, detail) {
            const id = detail?.prompt_id;
            if (HELD_EVENTS.has(type) && id && transport.posting > 0 && !h.isOurs(id)) {
                transport.held.push([type, detail]);
                return undefined;
            }
            if (type === "execution_error" && id && h.isOurs(id)) {
                h.onFinished(id, "error", detail);
                return dispatch.call(this, "execution_interrupted", {
                    prompt_id: id, node_id: detail.node_id, node_type: detail.node_type,
                    executed: detail.executed ?? [], timestamp: detail.timestamp,
                });
            }
            return dispatch.apply(this, arguments);
        });
    }

    release() {
        if (this.posting > 0) return;
        const held = this.held;
        this.held = [];
        for (const [type, detail] of held) api.dispatchCustomEvent(type, detail);
        const frames = this.heldFrames;
        this.heldFrames = [];
        for (const [meta, blob] of frames) this.handlers.onFrame(meta, blob);
    }

    /** Queue `output` (API format) up to the node ids `targets`. `register(promptId)` runs before any
     *  event of the new prompt is delivered. Throws an Error with a readable message if rejected. */
    async queue(output, workflow, targets, register) {
        this.posting++;
        try {
            let res;
            try {
                res = await api.queuePrompt(0, { output, workflow }, { partialExecutionTargets: targets });
            } catch (e) {
                const error = new Error(e?.response ? describeQueueError(e.response, this.displayName)
                                                    : `could not queue: ${e?.message ?? e}`);
                error.rejected = !!e?.response;
                throw error;
            }
            if (!res?.prompt_id) throw new Error("the server answered without a prompt id");
            register(res.prompt_id);
            return res.prompt_id;
        } finally {
            this.posting--;
            this.release();
        }
    }

    post(path, body) {
        return api.fetchApi(path, {
            method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        }).catch(() => {});
    }

    /** Remove a waiting prompt from the server's queue. */
    withdraw(id) { return this.post("/queue", { delete: [id] }); }

    /** Interrupt a prompt if it runs (the server ignores it for a prompt it does not run). */
    interrupt(id) { return this.post("/interrupt", { prompt_id: id }); }

    /** Drop a finished prompt from the server's history (a live run is a draft). */
    forget(id) { return this.post("/history", { delete: [id] }); }
}
