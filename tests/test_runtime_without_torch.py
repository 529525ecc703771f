"""The runtime and the viewer must install and run without torch (docs/ARCHITECTURE.md: realtime/ and gui/ never
import it); so must the evaluation tooling and the occluder painters, which a runtime-only install can use."""
import subprocess
import sys

import pytest

MODULES = ["cli.main", "cli.process", "cli.live", "cli.bench", "cli.demo", "realtime.options", "realtime.pipeline",
           "realtime.process", "realtime.live", "realtime.bench", "realtime.demo", "gui.app", "gui.main_window"]
TORCH_FREE_TOOLS = ["trainer.evaluation.temporal", "trainer.evaluation.metrics", "trainer.evaluation.plots",
                    "trainer.occluders.painters", "trainer.occluders.moving", "trainer.occlusion"]


def imported_after(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(k for k in sys.modules if k.split('.')[0] in {packages!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 - a list literal printed by our own code


@pytest.mark.slow
def test_runtime_and_viewer_import_no_torch():
    assert imported_after(MODULES, ("torch", "trainer", "exporters")) == []


@pytest.mark.slow
def test_evaluation_and_occluders_import_no_torch():
    assert imported_after(TORCH_FREE_TOOLS, ("torch", "torchvision", "onnx", "exporters")) == []
