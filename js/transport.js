// LCM Kit live mode, the transport: queue a prompt, withdraw or interrupt it, forget it in the history, and the
// server's events about our prompts (start, progress, end, frames). A pure ES module (the frontend's `api` is given;
// `node --test tests/js` runs it with a fake one): importing it registers nothing; `LiveTransport.listen()`
// subscribes.
//
// Prompts are queued through the frontend's own `api.queuePrompt` (what the Run button ends in; js/compat.js
// queuePromptUpTo), so other extensions that wrap it see live prompts too. Not `app.queuePrompt`: it applies the
// widgets' "control after generate" (a randomized seed would change the graph after every live run and queue the
// next one forever), shows a modal dialog when the server rejects a prompt, and does not return the prompt id.
// The server names the prompt id, and the websocket can be faster than the HTTP answer: while a queue request is
// under way, an event for a prompt id not known yet is held, and so is every event after it, until the request
// returns; then all of them go on, in the order they came (every extension sees a live run's events complete and in
// order, only a little later).
// A failed live run shows its error on the Live Preview node, not in the frontend's modal error dialog: the
// `execution_error` of a live prompt goes to live mode only, and the rest of the frontend gets an
// `execution_interrupted` for that prompt (it ends its progress state the same way). A normal Run is untouched.
// A prompt the server refuses at queue time (HTTP 400 with node_errors) is not shown by the frontend at all
// (`api.queuePrompt` only throws; the dialog comes from `app.queuePrompt`): `queue` throws its text.
import { queuePromptUpTo, wrapEventDispatch } from "./compat.js";

export const FRAME_EVENT = "lcm_kit.live_frame";

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
    /** api: the frontend's api (scripts/api.js); handlers: {isOurs(id), onStart(id, timestamp), onProgress(id,
     *  {node, value, max}), onFinished(id, kind, detail), onFrame(meta, blob)}; displayName(class_type): a node
     *  type's name as the user sees it. */
    constructor(api, handlers, displayName = (type) => type) {
        this.api = api;
        this.handlers = handlers;
        this.displayName = displayName;
        this.posting = 0;              // queue requests under way
        this.held = [];                // [type, detail] held while posting, in the order they came
        this.pendingMeta = null;       // the frame announcement waiting for its binary message
        this.listening = false;
        this.filtering = false;        // the api's event dispatch is ours (compat.wrapEventDispatch)
    }

    /** Subscribe; true where the api's event dispatch could be wrapped (else live errors reach the frontend's
     *  dialog, and events are not held while a queue request is under way). */
    listen() {
        if (this.listening) return this.filtering;
        this.listening = true;
        const h = this.handlers, api = this.api;
        api.addEventListener(FRAME_EVENT, ({ detail }) => { this.pendingMeta = detail; });
        api.addEventListener("b_preview", ({ detail }) => {
            const meta = this.pendingMeta;
            if (!meta) return;                 // a sampler's latent preview, not ours
            this.pendingMeta = null;
            h.onFrame(meta, detail);
        });
        api.addEventListener("execution_start", ({ detail }) => h.onStart(detail?.prompt_id, detail?.timestamp));
        api.addEventListener("executing", ({ detail }) => {
            // {node, display_node, prompt_id}; older servers send the node id alone, null when the prompt ends
            const node = detail && typeof detail === "object" ? detail.display_node ?? detail.node : detail;
            h.onProgress(detail?.prompt_id ?? null, { node: node ?? null });
        });
        api.addEventListener("progress", ({ detail }) =>
            h.onProgress(detail?.prompt_id ?? null, { node: detail?.node ?? null, value: detail?.value, max: detail?.max }));
        api.addEventListener("execution_success", ({ detail }) => h.onFinished(detail?.prompt_id, "success", detail));
        api.addEventListener("execution_interrupted", ({ detail }) =>
            h.onFinished(detail?.prompt_id, "interrupted", detail));
        const transport = this;
        this.filtering = wrapEventDispatch(api, (dispatch) => function (type, detail) {
            const id = detail?.prompt_id;
            if (transport.posting > 0 && (transport.held.length || (id && !h.isOurs(id)))) {
                transport.held.push([type, detail]);
                return undefined;
            }
            // Our prompts' errors: to live mode, not to the frontend's modal dialog (see above).
            if (type === "execution_error" && id && h.isOurs(id)) {
                h.onFinished(id, "error", detail);
                return dispatch.call(this, "execution_interrupted", {
                    prompt_id: id, node_id: detail.node_id, node_type: detail.node_type,
                    executed: detail.executed ?? [], timestamp: detail.timestamp,
                });
            }
            return dispatch.apply(this, arguments);
        });
        if (!this.filtering) {
            api.addEventListener("execution_error", ({ detail }) => h.onFinished(detail?.prompt_id, "error", detail));
        }
        return this.filtering;
    }

    release() {
        if (this.posting > 0) return;
        const held = this.held;
        this.held = [];
        for (const [type, detail] of held) this.api.dispatchCustomEvent(type, detail);
    }

    /** Queue `output` (API format) up to the node ids `targets`. `register(promptId)` runs before any
     *  event of the new prompt is delivered. Throws an Error with a readable message if rejected. */
    async queue(output, workflow, targets, register) {
        this.posting++;
        try {
            let res;
            try {
                res = await queuePromptUpTo(this.api, output, workflow, targets);
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
        return this.api.fetchApi(path, {
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
