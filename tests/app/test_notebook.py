"""notebooks/quickstart.ipynb executes offline, top to bottom, in a kernel on this interpreter."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``python3`` kernelspec that runs *this* interpreter, found before any user or system one.

    A fresh clone has only ``pip install -e .[dev]``: no kernel was ever installed, and a
    ``python3`` kernelspec elsewhere on the machine may point at another Python without agent_kit.
    ``JUPYTER_PATH`` is searched first, so this spec wins.
    """
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (agent_kit tests)",
        "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("AGENT_KIT_HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(home))  # the notebook's temporary home lands under tmp_path
    for name in ("AGENT_KIT_DB_URL", "AGENT_KIT_MODEL", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    return home


def _text(cell: dict) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_quickstart_notebook_runs_to_a_verified_audit(kernel_env: Path) -> None:
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"

    NotebookClient(nb, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(ROOT)}}).execute()

    outputs = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert "paused |" in outputs
    assert '"action_requests"' in outputs and '"review_configs"' in outputs
    assert "ApprovalError" in outputs  # the customer could not approve
    assert "replied |" in outputs
    assert "audit verified: True" in outputs
    (home,) = kernel_env.glob("agent_kit_quickstart_*")
    assert {"shop.sqlite", "agent_kit.sqlite"} <= {p.name for p in home.iterdir()}


def test_quickstart_notebook_is_stored_without_outputs() -> None:
    """Outputs hold timestamps and hashes; stored ones would churn on every run and go stale."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
