// LCM Kit sketch input: a drawing canvas inside the Sketch node (LCMKitSketch), as one DOM widget that both node
// renderers draw (classic LiteGraph and Nodes 2.0).
//
// The widget's value is the strokes layer as a PNG data URL (transparent where nothing is painted): it is saved in
// the workflow's widgets_values and sent inside the prompt, so no file is written per stroke; nodes/sketch.py
// checks it and composites it over the background colour (or a connected image). Tools: brush size and colour,
// eraser, undo/redo, clear, background colour (the node's `background` widget), and a picked picture to start
// from (drawn into the strokes layer). A sketch whose PNG is over the server's cap is not sent and not saved; the
// node says so.
//
// Live mode (js/live.js) follows the drawing as it follows typing: the pad is a source of live mode
// (LiveMode.source): each stroke end writes the value and says `changed`, which the scheduler (js/scheduling.js)
// treats like a keystroke; during a long stroke the value is written at most every STROKE_COMMIT_MS, so frames come
// while you draw.
//
// Camera mode (the "camera" button): the pad streams (`streaming(true)`); getUserMedia frames become the sketch, one
// each time live mode asks for the next (`next`: nothing of ours waits in the queue or for its debounce) and at most
// one per the last run time (so the rate follows what the server manages), mirrored if "mirror" is on; while it
// streams, live mode never cuts a run short for a newer frame. It stops when live mode stops (`stopped`), the tab is
// hidden or the node is removed; a denied permission or a missing camera is a message on the node.
import { app } from "../../scripts/app.js";
import { redrawWidget } from "./compat.js";
import { live, setLive } from "./live.js";
import { ensureStyle, fitNode, textElement } from "./status.js";

const NODE_CLASS = "LCMKitSketch";
export const SKETCH_TYPE = "LCMKIT_SKETCH";      // nodes/sketch_nodes.py
export const MAX_PNG_BYTES = 4 * 1024 * 1024;    // nodes/sketch.py MAX_SKETCH_PNG_BYTES
const PREFIX = "data:image/png;base64,";
const STROKE_COMMIT_MS = 250;
const UNDO_LIMIT = 40;
const TOOLS_HEIGHT = 50;                         // two rows of tools at the narrowest node width
const MARGIN = 4;
const SYNC_MS = 250;                             // width/height/background widgets changed by any means
const CAMERA_MIN_MS = 66;                        // at most ~15 camera frames a second
const CAMERA_POLL_MS = 30;

/** The PNG size (bytes) a data URL carries. */
export function dataUrlBytes(url) {
    const payload = url.startsWith(PREFIX) ? url.length - PREFIX.length : url.length;
    return Math.floor(payload * 3 / 4);
}

function megabytes(n) {
    return `${(n / 2 ** 20).toFixed(1)} MB`;
}

function widgetOf(node, name) {
    return node.widgets?.find((w) => w.name === name);
}

/** A control with its name before it (the name is also its tooltip's first word). */
function labelled(name, control) {
    const label = document.createElement("label");
    label.title = control.title;
    label.append(name, control);
    return label;
}

function button(label, title, onClick) {
    const b = textElement("button", label);
    b.type = "button";
    b.title = title;
    b.addEventListener("click", (e) => { e.stopPropagation(); onClick(); });
    return b;
}

/** The drawing canvas of one Sketch node. */
export class SketchPad {
    constructor(node, name) {
        ensureStyle();
        this.node = node;
        this.value = "";
        this.undo = [];
        this.redo = [];
        this.drawing = null;            // {last: [x, y], lastCommit} while a stroke goes on
        this.loadSeq = 0;
        this.camera = null;
        this.live = live.source({ next: (info) => this.cameraNext(info), stopped: () => this.stopCamera() });
        this.root = document.createElement("div");
        this.root.className = "lcm-kit-panel lcm-kit-sketch";
        this.tools = document.createElement("div");
        this.tools.className = "lcm-kit-tools";
        this.size = Object.assign(document.createElement("input"), { type: "range", min: 1, max: 96, value: 12,
                                                                     title: "brush size (canvas pixels)" });
        this.colour = Object.assign(document.createElement("input"), { type: "color", value: "#202020",
                                                                       title: "brush colour" });
        this.eraser = button("eraser", "erase to the background", () => this.setEraser(!this.erasing));
        this.eraser.setAttribute("aria-pressed", "false");
        // (The background colour is the node's `background` widget: one control for it.)
        this.file = Object.assign(document.createElement("input"), { type: "file", accept: "image/*" });
        this.file.style.display = "none";
        this.file.addEventListener("change", () => this.loadFile(this.file.files?.[0]));
        this.tools.append(labelled("size", this.size), labelled("brush", this.colour), this.eraser,
                          button("undo", "undo the last stroke", () => this.undoStep()),
                          button("redo", "redo what was undone", () => this.redoStep()),
                          button("clear", "clear the drawing", () => this.clear()),
                          button("image…", "start from a picture (drawn into the sketch)", () => this.file.click()),
                          this.file);
        this.cameraButton = button("camera", "the camera's picture becomes the sketch (live mode)",
                                   () => (this.camera ? this.stopCamera() : this.startCamera()));
        this.cameraButton.setAttribute("aria-pressed", "false");
        this.mirror = button("mirror", "mirror the camera's picture (as a mirror shows you)",
                             () => this.mirror.setAttribute("aria-pressed",
                                                            String(this.mirror.getAttribute("aria-pressed") !== "true")));
        this.mirror.setAttribute("aria-pressed", "true");
        this.tools.append(this.cameraButton, this.mirror);
        this.showMirror();
        for (const el of [this.size, this.colour]) {
            el.addEventListener("pointerdown", (e) => e.stopPropagation());
        }
        this.message = textElement("div", "", "lcm-kit-line warning");
        this.message.style.display = "none";
        this.stage = document.createElement("div");
        this.stage.className = "lcm-kit-stage";
        this.canvas = document.createElement("canvas");
        this.canvas.width = this.canvas.height = 1;
        this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
        this.stage.append(this.canvas);
        this.root.append(this.tools, this.message, this.stage);
        this.bindPointer();
        this.resizeObserver = new ResizeObserver(() => this.layout());
        this.resizeObserver.observe(this.stage);
        this.widget = node.addDOMWidget(name, SKETCH_TYPE, this.root, {
            hideOnZoom: false,
            margin: MARGIN,
            getValue: () => this.value,
            setValue: (v) => this.load(v),
            getMinHeight: () => this.minHeight(),
        });
        this.sync();
        this.snapshot();
        this.syncTimer = setInterval(() => this.sync(), SYNC_MS);
    }

    get erasing() { return this.eraser.getAttribute("aria-pressed") === "true"; }

    setEraser(on) { this.eraser.setAttribute("aria-pressed", String(on)); }

    /** The canvas size the node's width/height widgets ask for. */
    wantedSize() {
        const w = Number(widgetOf(this.node, "width")?.value) || 512;
        const h = Number(widgetOf(this.node, "height")?.value) || 512;
        return [Math.max(1, Math.round(w)), Math.max(1, Math.round(h))];
    }

    minHeight() {
        const [w, h] = this.wantedSize();
        const width = Math.max(200, (this.node.size?.[0] ?? 400) - 2 * MARGIN - 20);
        const message = this.message.style.display === "none" ? 0 : 34;
        return TOOLS_HEIGHT + message + Math.min(512, Math.round(width * h / w));
    }

    // Follow the width/height/background widgets (changed by typing, dragging, a link, a loaded workflow).
    sync(keepDrawing = true) {
        // The classic renderer gives the element the widget's height; Nodes 2.0 lets it take its content's
        // height: ask for the same height there, so the canvas is shown as large in both.
        const minHeight = `${this.minHeight()}px`;
        if (this.root.style.minHeight !== minHeight) this.root.style.minHeight = minHeight;
        const [w, h] = this.wantedSize();
        if (this.canvas.width !== w || this.canvas.height !== h) this.resize(w, h, keepDrawing);
        const bg = String(widgetOf(this.node, "background")?.value ?? "#ffffff");
        if (bg !== this.shownBackground) {
            this.shownBackground = bg;
            this.canvas.style.background = /^#[0-9a-f]{6}$/i.test(bg) ? bg : "#ffffff";
        }
    }

    // Show the canvas as large as the stage allows, keeping its aspect ratio.
    layout() {
        const box = this.stage.getBoundingClientRect();
        const bw = this.stage.clientWidth, bh = this.stage.clientHeight;
        if (!bw || !bh || !box.width) return;
        const scale = Math.min(bw / this.canvas.width, bh / this.canvas.height);
        this.canvas.style.width = `${Math.floor(this.canvas.width * scale)}px`;
        this.canvas.style.height = `${Math.floor(this.canvas.height * scale)}px`;
    }

    // A new canvas size; with `keepDrawing`, the drawing is rescaled to it and written (not when a saved
    // sketch of the new size is about to be loaded).
    resize(w, h, keepDrawing) {
        const hadDrawing = keepDrawing && this.canvas.width > 1;
        let copy = null;
        if (hadDrawing) {
            const old = this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height);
            copy = document.createElement("canvas");
            copy.width = old.width;
            copy.height = old.height;
            copy.getContext("2d").putImageData(old, 0, 0);
        }
        this.canvas.width = w;
        this.canvas.height = h;
        if (copy) this.ctx.drawImage(copy, 0, 0, w, h);     // the drawing keeps its composition
        this.undo = [];
        this.redo = [];
        this.snapshot();
        this.layout();
        fitNode(this.node);
        if (hadDrawing) this.commit();
    }

    // ---- drawing ----

    point(e) {
        const r = this.canvas.getBoundingClientRect();
        return [(e.clientX - r.left) * this.canvas.width / r.width, (e.clientY - r.top) * this.canvas.height / r.height];
    }

    bindPointer() {
        const c = this.canvas;
        // The node renderers would drag the node or pan the graph: the canvas keeps its pointer.
        for (const type of ["pointerdown", "pointermove", "mousedown", "mousemove", "wheel", "contextmenu"]) {
            c.addEventListener(type, (e) => e.stopPropagation());
        }
        c.addEventListener("pointerdown", (e) => {
            if (e.button !== 0) return;
            e.preventDefault();
            c.setPointerCapture?.(e.pointerId);
            this.drawing = { last: this.point(e), lastCommit: performance.now() };
            this.dab(this.drawing.last);
        });
        c.addEventListener("pointermove", (e) => {
            if (!this.drawing) return;
            const events = e.getCoalescedEvents?.() ?? [e];
            for (const ev of events.length ? events : [e]) {
                const p = this.point(ev);
                this.line(this.drawing.last, p);
                this.drawing.last = p;
            }
            if (performance.now() - this.drawing.lastCommit >= STROKE_COMMIT_MS) {
                this.drawing.lastCommit = performance.now();
                this.commit();
            }
        });
        const end = () => {
            if (!this.drawing) return;
            this.drawing = null;
            this.snapshot();
            this.commit();
        };
        c.addEventListener("pointerup", end);
        c.addEventListener("pointercancel", end);
        c.addEventListener("lostpointercapture", end);
    }

    brush() {
        const ctx = this.ctx;
        ctx.globalCompositeOperation = this.erasing ? "destination-out" : "source-over";
        ctx.strokeStyle = ctx.fillStyle = this.colour.value;
        ctx.lineWidth = Number(this.size.value);
        ctx.lineCap = ctx.lineJoin = "round";
        return ctx;
    }

    dab([x, y]) {
        const ctx = this.brush();
        ctx.beginPath();
        ctx.arc(x, y, ctx.lineWidth / 2, 0, 2 * Math.PI);
        ctx.fill();
        ctx.globalCompositeOperation = "source-over";
    }

    line([x0, y0], [x1, y1]) {
        const ctx = this.brush();
        ctx.beginPath();
        ctx.moveTo(x0, y0);
        ctx.lineTo(x1, y1);
        ctx.stroke();
        ctx.globalCompositeOperation = "source-over";
    }

    // ---- history ----

    snapshot() {
        this.undo.push(this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height));
        if (this.undo.length > UNDO_LIMIT) this.undo.shift();
        this.redo = [];
    }

    // The undo stack's top is what the canvas shows; undo moves it to the redo stack.
    undoStep() {
        if (this.undo.length < 2) return;
        this.redo.push(this.undo.pop());
        this.ctx.putImageData(this.undo.at(-1), 0, 0);
        this.commit();
    }

    redoStep() {
        if (!this.redo.length) return;
        this.undo.push(this.redo.pop());
        this.ctx.putImageData(this.undo.at(-1), 0, 0);
        this.commit();
    }

    clear() {
        this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
        this.snapshot();
        this.commit();
    }

    /** Draw `source` (an image, bitmap, video frame) over the whole canvas, cropped to fill it ("cover"). */
    drawCover(source, sw, sh, mirror = false) {
        const { width: w, height: h } = this.canvas;
        const scale = Math.max(w / sw, h / sh);
        const cw = w / scale, ch = h / scale;
        const ctx = this.ctx;
        ctx.save();
        if (mirror) { ctx.translate(w, 0); ctx.scale(-1, 1); }
        ctx.globalCompositeOperation = "source-over";
        ctx.clearRect(0, 0, w, h);
        ctx.drawImage(source, (sw - cw) / 2, (sh - ch) / 2, cw, ch, 0, 0, w, h);
        ctx.restore();
    }

    async loadFile(file) {
        if (!file) return;
        try {
            const bitmap = await createImageBitmap(file);
            this.drawCover(bitmap, bitmap.width, bitmap.height);
            bitmap.close?.();
            this.snapshot();
            this.commit();
        } catch (e) {
            this.say(`could not read ${file.name} as a picture (${e?.message ?? e}): pick a PNG, JPEG or WebP file`);
        } finally {
            this.file.value = "";
        }
    }

    // ---- the value ----

    say(text) {
        const was = this.message.style.display !== "none";
        this.message.textContent = text || "";
        this.message.style.display = text ? "" : "none";
        if (was !== !!text) fitNode(this.node);
    }

    /** Write the canvas into the widget value (what the prompt and the saved workflow carry). */
    commit() {
        const url = this.canvas.toDataURL("image/png");
        const bytes = dataUrlBytes(url);
        if (bytes > MAX_PNG_BYTES) {
            this.value = "";
            this.say(`This sketch is ${megabytes(bytes)} as PNG, over the ${megabytes(MAX_PNG_BYTES)} a prompt may carry: `
                     + "it is NOT sent to the server and NOT saved with the workflow (both get an empty sketch). "
                     + "Undo, simplify the drawing, or make width/height smaller.");
        } else {
            this.value = url;
            this.say("");
        }
        this.widget.callback?.(this.value);
        this.changed();
    }

    // Tell live mode (and the canvas) that the sketch changed.
    changed() {
        this.node.graph?.setDirtyCanvas?.(true, false);
        redrawWidget(this.widget);
        this.live.changed();
    }

    /** Show a saved or pasted value (a PNG data URL, or "" for an empty sketch). */
    load(value) {
        // The Nodes 2.0 renderer writes the widget's own value back after each change: not a new sketch.
        if (typeof value === "string" && value === this.value && value) return;
        const seq = ++this.loadSeq;
        this.sync(false);              // the canvas takes the loaded width/height first (nothing to rescale)
        this.value = typeof value === "string" ? value : "";
        const reset = () => { this.undo = []; this.redo = []; this.snapshot(); };
        if (!this.value) {
            this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
            reset();
            return;
        }
        const image = new Image();
        image.onload = () => {
            if (seq !== this.loadSeq) return;
            this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
            this.ctx.drawImage(image, 0, 0, this.canvas.width, this.canvas.height);
            reset();
        };
        image.onerror = () => seq === this.loadSeq && this.say("the saved sketch could not be read; it was left empty");
        image.src = this.value;
    }

    // ---- camera ----

    async startCamera() {
        if (!navigator.mediaDevices?.getUserMedia) {
            this.say("This page cannot use a camera: the browser offers one only over https or on localhost.");
            return;
        }
        let stream;
        try {
            stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } },
                                                                 audio: false });
        } catch (e) {
            const name = e?.name ?? "";
            this.say(name === "NotAllowedError" || name === "SecurityError"
                ? "Camera permission was denied: allow the camera for this site (the icon in the address bar), then click camera again."
                : name === "NotFoundError" || name === "OverconstrainedError" || name === "NotReadableError"
                    ? `No camera could be opened (${name}): connect one, close other apps that use it, or draw instead.`
                    : `The camera did not start: ${e?.message ?? e}`);
            return;
        }
        const video = document.createElement("video");
        video.muted = true;
        video.playsInline = true;
        video.srcObject = stream;
        this.stage.append(video);
        try { await video.play(); } catch { /* frames still decode for a muted inline video */ }
        this.camera = { stream, video, lastGrab: 0, timer: null };
        this.cameraButton.setAttribute("aria-pressed", "true");
        this.showMirror();
        this.say("");
        this.onHidden ??= () => document.hidden && this.stopCamera();
        document.addEventListener("visibilitychange", this.onHidden);
        if (!setLive(true)) { this.stopCamera(); return; }   // live mode cannot run here: its node says why
        this.live.streaming(true);     // live mode asks for the first frame (cameraNext) once the server can take it
    }

    // Live mode can take the next frame: grab one now, or once the last run time has passed since the previous one.
    cameraNext({ expectedRunMs }) {
        const cam = this.camera;
        if (!cam || cam.timer != null) return;
        const wait = Math.max(CAMERA_MIN_MS, expectedRunMs ?? 0) - (performance.now() - cam.lastGrab);
        cam.timer = setTimeout(() => this.grab(), Math.max(0, wait));
    }

    grab() {
        const cam = this.camera;
        if (!cam) return;
        cam.timer = null;
        if (document.hidden) { this.stopCamera(); return; }
        if (!cam.video.videoWidth) {   // the camera's first picture is not decoded yet
            cam.timer = setTimeout(() => this.grab(), CAMERA_POLL_MS);
            return;
        }
        cam.lastGrab = performance.now();
        this.drawCover(cam.video, cam.video.videoWidth, cam.video.videoHeight,
                       this.mirror.getAttribute("aria-pressed") === "true");
        this.commit();
    }

    // The mirror switch is shown only while the camera runs (it mirrors the camera's picture, nothing else).
    showMirror() {
        this.mirror.style.display = this.camera ? "" : "none";
    }

    stopCamera() {
        const cam = this.camera;
        if (!cam) return;
        this.camera = null;
        this.live.streaming(false);
        clearTimeout(cam.timer);
        for (const track of cam.stream.getTracks()) track.stop();
        cam.video.remove();
        document.removeEventListener("visibilitychange", this.onHidden);
        this.cameraButton.setAttribute("aria-pressed", "false");
        this.showMirror();
        this.snapshot();               // the last frame stays: draw over it, or undo back to it
    }

    remove() {
        this.stopCamera();
        this.live.remove();
        clearInterval(this.syncTimer);
        this.resizeObserver.disconnect();
    }
}

const pads = new WeakMap();     // node -> SketchPad

app.registerExtension({
    name: "LCMKit.Sketch",
    getCustomWidgets() {
        return {
            [SKETCH_TYPE](node, inputName) {
                const pad = new SketchPad(node, inputName);
                pads.set(node, pad);
                return { widget: pad.widget };
            },
        };
    },
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== NODE_CLASS) return;
        const onNodeCreated = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const r = onNodeCreated?.apply(this, arguments);
            // A new width/height rescales the canvas at once, so the next prompt carries a PNG of that size.
            for (const name of ["width", "height", "background"]) {
                const w = widgetOf(this, name);
                if (!w) continue;
                const node = this, callback = w.callback;
                w.callback = function () {
                    const out = callback?.apply(this, arguments);
                    pads.get(node)?.sync();
                    return out;
                };
            }
            if (this.size[0] < 380) this.setSize([380, this.size[1]]);
            fitNode(this);
            return r;
        };
        const onRemoved = nodeType.prototype.onRemoved;
        nodeType.prototype.onRemoved = function () {
            onRemoved?.apply(this, arguments);
            pads.get(this)?.remove();
        };
    },
});
