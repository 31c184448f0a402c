"""Installing the course into Colab's notebook stack changes none of it.

Colab ships its own notebook stack; upgrading ipywidgets there breaks widget display. This test
builds a fresh virtual environment that holds Colab's versions (from Colab's published package list)
with torch 2.13.0 already installed, then asks pip what `pip install <the course>` would do
(`--dry-run --report`, nothing is installed) and asserts that none of those packages would change.

It needs PyPI and is skipped (not failed) only when PyPI cannot be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Colab's notebook stack (its published package list), the versions installing the course must keep.
COLAB_STACK = {
    "ipykernel": "6.17.1",
    "ipython": "7.34.0",
    "ipywidgets": "7.7.1",
    "notebook": "6.5.5",
    "widgetsnbextension": "3.6.10",
    "jupyterlab-widgets": "3.0.15",
}
TORCH = "2.13.0"

pytestmark = [pytest.mark.network, pytest.mark.slow]


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _link_torch(env: Path) -> None:
    """Make torch 2.13.0 'installed' in ``env`` without a download: a .pth file points at a folder
    holding only torch (and its dist-info) from the interpreter running the tests. Colab has its own
    torch; what matters here is that pip sees torch==2.13.0 present and does not resolve another."""
    import torch

    site = Path(torch.__file__).resolve().parents[1]
    infos = list(site.glob("torch-*.dist-info"))
    if not infos or not torch.__version__.startswith(TORCH):
        pytest.skip(f"this interpreter's torch is {torch.__version__}, not {TORCH}")
    shelf = env / "torch-shelf"
    shelf.mkdir()
    for item in [site / "torch", *infos]:
        (shelf / item.name).symlink_to(item, target_is_directory=True)
    env_site = next((env / "lib").glob("python3*/site-packages"))
    (env_site / "colab_torch.pth").write_text(str(shelf) + "\n")


def _pip(env: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [str(env / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PIP_NO_CACHE_DIR": "0"})


@pytest.mark.timeout(300)
def test_installing_the_course_keeps_colabs_notebook_stack(tmp_path):
    if not _pypi_reachable():
        pytest.skip("PyPI cannot be reached")
    if sys.platform == "win32":
        pytest.skip("the venv layout below is the POSIX one")
    env = tmp_path / "colab"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(env)
    _link_torch(env)
    # Colab's stack as Colab has it. --no-deps: only these versions matter here, and it keeps the
    # test well under a minute.
    done = _pip(env, "install", "-q", "--no-deps", *(f"{k}=={v}" for k, v in COLAB_STACK.items()))
    assert done.returncode == 0, done.stderr[-2000:]
    # The course itself, from a copy of this checkout (pip builds it; nothing of the repo is touched).
    project = tmp_path / "course"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "data", "build", "chapters", "benchmarks", "*.egg-info", "__pycache__"))
    report = tmp_path / "report.json"
    plan = _pip(env, "install", "--dry-run", "--quiet", "--report", str(report), str(project), timeout=240)
    assert plan.returncode == 0, f"pip could not install the course next to Colab's stack:\n{plan.stderr[-3000:]}"
    planned = {_canonical(item["metadata"]["name"]): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    assert "llm-from-scratch" in planned  # the report is the course's
    changed = {name: (COLAB_STACK.get(name, TORCH), planned[name])
               for name in [*COLAB_STACK, "torch"] if name in planned}
    assert not changed, f"installing the course would change Colab's packages (kept -> new): {changed}"
    assert "jupyterlab" not in planned, "the course's runtime dependencies pull JupyterLab into Colab"
