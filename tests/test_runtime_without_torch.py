"""The runtime and the viewer must install and run without torch (docs/ARCHITECTURE.md: realtime/ and gui/ never import it)."""
import subprocess
import sys

MODULES = ["cli.main", "cli.process", "cli.live", "cli.bench", "cli.demo", "realtime.options", "realtime.pipeline", "realtime.process", "realtime.live", "realtime.bench", "realtime.demo",
           "realtime.temporal_eval", "gui.app", "gui.main_window"]


def test_runtime_and_viewer_import_no_torch():
    code = (
        f"import importlib, sys\nfor m in {MODULES!r}: importlib.import_module(m)\n"
        "heavy = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'trainer', 'exporters'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
