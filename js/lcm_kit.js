// LCM Kit frontend extension: every node of the pack shows what its runs report (ui.lcm_kit_status: the
// LoRA loader's pick, the sampler's cfg warning, Compile's and Offload's notes) as lines on the node, in both
// node renderers (js/status.js); the lines of a node that runs again or fails are cleared at once (never a stale
// line beside new values; a node the server took from its cache keeps them). The LCM Sampler says on the node when
// its steps_preset overrides steps. Live mode is js/live.js.
import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";
import { nodeByExecutionId, rootGraph } from "./compat.js";
import { showHint, showStatus, showStatusOnExecuted } from "./status.js";

const PRESET_WIDGET = "steps_preset";

/** The hint for a steps_preset value: "" for "custom (use steps)", else that steps is not used. */
export function presetHint(preset) {
    const steps = /(\d+) steps?\b/.exec(String(preset ?? ""))?.[1];
    return steps ? `steps is ignored: steps_preset "${preset}" samples ${steps} step${steps === "1" ? "" : "s"}` : "";
}

// The hint follows the preset widget: its callback (both renderers call it on a change) and a loaded workflow.
function followPreset(nodeType) {
    const update = (node) => showHint(node, presetHint(node.widgets?.find((w) => w.name === PRESET_WIDGET)?.value));
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
        const r = onNodeCreated?.apply(this, arguments);
        const widget = this.widgets?.find((w) => w.name === PRESET_WIDGET);
        if (widget) {
            const callback = widget.callback;
            const node = this;
            widget.callback = function () {
                const out = callback?.apply(this, arguments);
                update(node);
                return out;
            };
        }
        update(this);
        return r;
    };
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
        const r = onConfigure?.apply(this, arguments);
        update(this);
        return r;
    };
}

// A node that starts to run, or fails, loses the lines of its previous run.
function clearStatusOf(id) {
    const node = id == null ? null : nodeByExecutionId(rootGraph(app), id);
    if (node?.lcmKitStatus?.lines.length) showStatus(node, []);
}

app.registerExtension({
    name: "LCMKit.Status",
    setup() {
        api.addEventListener("executing", ({ detail }) =>
            clearStatusOf(detail && typeof detail === "object" ? detail.display_node ?? detail.node : detail));
        api.addEventListener("execution_error", ({ detail }) => clearStatusOf(detail?.node_id));
    },
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (String(nodeData?.name ?? "").startsWith("LCMKit")) showStatusOnExecuted(nodeType);
        if (nodeData?.input?.required?.[PRESET_WIDGET]) followPreset(nodeType);
    },
});
