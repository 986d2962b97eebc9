// LCM Kit: the pack's examples in the template browser in their numbered order ("1. LCM-LoRA text-to-image
// (SD1.5)" first). ComfyUI lists a pack's example_workflows in the order the file system gives them; the
// frontend keeps that order. Other packs' lists are left as they are.
import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";
import { packFolder, wrapWorkflowTemplates } from "./compat.js";

const FOLDER = packFolder(import.meta.url);

/** Names in their numbered order: "2. …" before "10. …" (numbers compared as numbers). */
export function numberedOrder(names) {
    return [...names].sort((a, b) => String(a).localeCompare(String(b), "en", { numeric: true }));
}

app.registerExtension({
    name: "LCMKit.Templates",
    init() {
        const wrapped = wrapWorkflowTemplates(api, (original) => async function () {
            const templates = await original.apply(this, arguments);
            if (Array.isArray(templates?.[FOLDER])) templates[FOLDER] = numberedOrder(templates[FOLDER]);
            return templates;
        });
        if (!wrapped) console.warn("LCM Kit: this frontend has no api.getWorkflowTemplates; the pack's examples are "
                                   + "listed in the file system's order");
    },
});
