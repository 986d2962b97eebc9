// LCM Kit frontend extension: every node of the pack shows what its runs report (ui.lcm_kit_status: the
// LoRA loader's pick, the sampler's cfg warning, Compile's and Offload's notes) as lines on the node, in both
// node renderers (js/status.js). Live mode is js/live.js.
import { app } from "../../scripts/app.js";
import { showStatusOnExecuted } from "./status.js";

app.registerExtension({
    name: "LCMKit.Status",
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (String(nodeData?.name ?? "").startsWith("LCMKit")) showStatusOnExecuted(nodeType);
    },
});
