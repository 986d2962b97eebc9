"""The two harness levels: ComfyUI in this process (real executor) and the real server (main.py).

ComfyUI's source tree comes from COMFYUI_DIR (set by scripts/testbed.py: the pinned v0.3.75 tree, or a
user's own checkout). The pack is installed the way a user installs it: a folder under the base
directory's `custom_nodes/` (a symlink to this repository). The repository root is never put on
sys.path: our `nodes/` package would shadow ComfyUI's `nodes.py`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACK_FOLDER = "lcm-kit"   # the folder name a user clones into custom_nodes/


def comfyui_dir() -> Path:
    d = os.environ.get("COMFYUI_DIR")
    if not d:
        raise RuntimeError("COMFYUI_DIR is not set: run the tests through `make test` (scripts/testbed.py)")
    return Path(d)


def make_base_dir(base: Path, models: dict[str, Path]) -> Path:
    """A ComfyUI base directory: custom_nodes/<pack> -> this repo, models/<folder>/<name> -> files."""
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_FOLDER
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    for folder in ("input", "output", "temp", "user"):
        (base / folder).mkdir(exist_ok=True)
    for rel, path in models.items():
        dest = base / "models" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            dest.symlink_to(path)
    return base


def install_pack(base: Path, folder: Path) -> Path:
    """Another node pack beside ours, as a user installs it: a copy of `folder` in base/custom_nodes/ (a copy, not a
    link: a pack may write its settings into its own folder, and each base directory is one ComfyUI instance)."""
    dest = base / "custom_nodes" / folder.name
    if not dest.exists():
        shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("__pycache__", ".lcm-kit-*"))
    return dest


# --------------------------------------------------------------------------------------------------
# In-process
# --------------------------------------------------------------------------------------------------

class MessageSink:
    """What PromptExecutor needs of the server: it records every message it is sent."""

    def __init__(self):
        self.client_id = "in-process"
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata = {}
        self.messages: list[tuple] = []

    def send_sync(self, event, data, sid=None):
        self.messages.append((event, data))

    def queue_updated(self):
        pass


_BOOTED: dict = {}


def bootstrap(base: Path, cpu: bool = True) -> None:
    """Import ComfyUI into this process (--cpu unless told otherwise) with `base` as its base directory, then load the
    built-in extra nodes and the custom nodes under base/custom_nodes (our pack among them)."""
    if _BOOTED:
        if _BOOTED["base"] != base:
            raise RuntimeError("ComfyUI is already booted in this process with another base directory")
        return
    root = str(comfyui_dir())
    if root not in sys.path:
        sys.path.insert(0, root)
    import comfy.options
    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import LatentPreviewMethod, args
    args.cpu = cpu
    args.base_directory = str(base)
    args.preview_method = LatentPreviewMethod.Latent2RGB
    # `utils` must be ComfyUI's utils/ package (before anything imports comfy/utils.py as `utils`);
    # it imports folder_paths, which reads args.base_directory, hence after the lines above.
    import utils.extra_config  # noqa: F401
    import folder_paths  # noqa: F401  (reads args.base_directory)
    import nodes
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    _BOOTED["base"] = base


def pack_module():
    """Our pack, as ComfyUI imported it (ComfyUI names the module after its path)."""
    import folder_paths
    for custom_nodes in folder_paths.get_folder_paths("custom_nodes"):
        name = os.path.join(custom_nodes, PACK_FOLDER).replace(".", "_x_")
        if name in sys.modules:
            return sys.modules[name]
    raise RuntimeError(f"the pack was not loaded from custom_nodes/{PACK_FOLDER}; see the log above")


class InProcessComfy:
    """Runs API-format prompts through ComfyUI's real validator and PromptExecutor."""

    def __init__(self):
        import execution
        self.sink = MessageSink()
        self.executor = execution.PromptExecutor(self.sink, cache_type=execution.CacheType.CLASSIC,
                                                 cache_args={"lru": 0, "ram": 0, "ram_inactive": 0})

    def validate(self, prompt: dict):
        import execution
        return asyncio.run(execution.validate_prompt(str(uuid.uuid4()), prompt, None))

    def run(self, prompt: dict, check: bool = True) -> dict:
        """Validate and execute `prompt`; return {node_id: ui output} (raises on failure if check)."""
        valid = self.validate(prompt)
        if not valid[0]:
            raise AssertionError(f"prompt did not validate: {valid[1]} {json.dumps(valid[3], indent=1)[:3000]}")
        prompt_id = str(uuid.uuid4())
        self.sink.messages.clear()
        self.executor.execute(prompt, prompt_id, {"client_id": self.sink.client_id}, valid[2])
        if check and not self.executor.success:
            errors = [m for m in self.executor.status_messages if m[0] == "execution_error"]
            raise AssertionError(f"prompt failed: {json.dumps(errors, indent=1, default=str)[:4000]}")
        return dict(self.executor.history_result.get("outputs", {})) if self.executor.success else {}

    def error(self) -> dict | None:
        for event, data in self.executor.status_messages:
            if event == "execution_error":
                return data
        return None


# --------------------------------------------------------------------------------------------------
# The real server
# --------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """`main.py --cpu` on 127.0.0.1 at a free port, with `base` as base directory."""

    def __init__(self, base: Path, log_path: Path, extra_args: list[str] = (), cpus: set[int] | None = None,
                 comfyui: Path | None = None, cpu: bool = True, threads: int | None = None):
        """`cpus`: pin the server to these CPU cores, with one torch thread per core (benchmarks); `comfyui`: another
        ComfyUI tree than COMFYUI_DIR's; `cpu` False: let ComfyUI use the GPU (scripts/gpu_checks.py); `threads`:
        this many torch threads, unpinned (several servers sharing the cores)."""
        self.threads = threads
        self.comfyui = comfyui or comfyui_dir()
        self.cpu = cpu
        self.base = base
        self.cpus = set(cpus) if cpus else None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "ComfyServer":
        return self.launch().wait_ready(timeout)

    def launch(self) -> "ComfyServer":
        """Start the process and return at once (start several, then `wait_ready` each)."""
        self.log = open(self.log_path, "w")
        # An in-memory user database: ComfyUI with alembic installed would otherwise write one into its source tree.
        cmd = [sys.executable, "main.py", *(["--cpu"] if self.cpu else []), "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--preview-method", "latent2rgb",
               "--database-url", "sqlite:///:memory:", *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        pin = None
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        if self.cpus:
            env["OMP_NUM_THREADS"] = str(len(self.cpus))
            pin = lambda: os.sched_setaffinity(0, self.cpus)  # noqa: E731
        self.proc = subprocess.Popen(cmd, cwd=self.comfyui, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, preexec_fn=pin)
        return self

    def wait_ready(self, timeout: float = 120) -> "ComfyServer":
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                self.get("/system_stats")
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"ComfyUI did not answer within {timeout}s:\n{self.log_text()[-4000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body=None, timeout: float = 60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return json.loads(raw) if raw and r.headers.get_content_type() == "application/json" else raw

    def get(self, path: str, timeout: float = 60):
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, body, timeout: float = 60):
        return self.request("POST", path, body, timeout=timeout)

    def queue(self, prompt: dict, client_id: str) -> str:
        prompt_id = str(uuid.uuid4())
        self.post("/prompt", {"prompt": prompt, "client_id": client_id, "prompt_id": prompt_id})
        return prompt_id

    def wait_history(self, prompt_id: str, timeout: float = 300) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            hist = self.get(f"/history/{prompt_id}")
            if prompt_id in hist and hist[prompt_id].get("status", {}).get("completed") is not None:
                if hist[prompt_id]["status"].get("status_str") in ("success", "error"):
                    return hist[prompt_id]
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s:\n{self.log_text()[-3000:]}")


class WebSocketListener:
    """Collects every /ws message (JSON text and binary frames) for one client id, in a thread."""

    def __init__(self, server: ComfyServer, client_id: str | None = None):
        self.server = server
        self.client_id = client_id or str(uuid.uuid4())
        self.json: list[dict] = []
        self.binary: list[bytes] = []
        self.ordered: list[dict | bytes] = []   # both kinds, in the order the socket delivered them
        self._arrived = threading.Condition()    # notified on every message
        self._ready = threading.Event()
        self._stop = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("websocket did not connect")
        return self

    def __exit__(self, *exc):
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self):
        import aiohttp

        async def main():
            self._stop = asyncio.Event()
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{self.server.url}/ws?clientId={self.client_id}") as ws:
                    self._ready.set()
                    while not self._stop.is_set():
                        try:
                            msg = await asyncio.wait_for(ws.receive(), 0.2)
                        except asyncio.TimeoutError:
                            continue
                        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            break
                        with self._arrived:
                            if msg.type == aiohttp.WSMsgType.TEXT:
                                self.json.append(json.loads(msg.data))
                                self.ordered.append(self.json[-1])
                            elif msg.type == aiohttp.WSMsgType.BINARY:
                                self.binary.append(msg.data)
                                self.ordered.append(msg.data)
                            self._arrived.notify_all()

        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(main())

    def events(self, kind: str) -> list[dict]:
        return [m["data"] for m in list(self.json) if m.get("type") == kind]

    def wait_for(self, condition, timeout: float = 120.0, what: str = "the awaited message"):
        """Blocks until `condition()` is true, re-checked as each message arrives; returns its value."""
        with self._arrived:
            if not self._arrived.wait_for(condition, timeout):
                raise AssertionError(f"{what} did not arrive within {timeout} s:\n{self.server.log_text()[-2000:]}")
            return condition()

    def wait_event(self, kind: str, prompt_id: str, timeout: float = 120.0) -> dict:
        """The first `kind` event of `prompt_id` (waiting for it if it has not arrived)."""
        def first():
            return next((e for e in self.events(kind) if e.get("prompt_id") == prompt_id), None)
        return self.wait_for(first, timeout, f"{kind} of prompt {prompt_id}")


def cleanup_base(base: Path) -> None:
    shutil.rmtree(base, ignore_errors=True)


logging.getLogger("PIL").setLevel(logging.WARNING)
