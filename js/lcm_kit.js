// LCM Kit frontend extension: shows the sampler's warnings (e.g. cfg too high for LCM) on the node.
import { app } from "../../scripts/app.js";

app.registerExtension({
    name: "LCMKit.Warnings",
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== "LCMKitSampler") return;
        const onExecuted = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (message) {
            onExecuted?.apply(this, arguments);
            const warnings = (message?.lcm_kit_status ?? []).filter((e) => e.level === "warning").map((e) => e.text);
            this.lcmKitWarning = warnings.length ? warnings.join("\n") : null;
            this.color = warnings.length ? "#a65" : undefined;
            this.setDirtyCanvas(true, true);
        };
        const onDrawForeground = nodeType.prototype.onDrawForeground;
        nodeType.prototype.onDrawForeground = function (ctx) {
            onDrawForeground?.apply(this, arguments);
            if (!this.lcmKitWarning || this.flags?.collapsed) return;
            ctx.save();
            ctx.fillStyle = "#fc8";
            ctx.font = "11px sans-serif";
            ctx.fillText("⚠ " + this.lcmKitWarning.split(":")[0], 6, this.size[1] + 14);
            ctx.restore();
        };
    },
});
