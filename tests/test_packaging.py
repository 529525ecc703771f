"""pyproject.toml: only the cpu / gpu extras pick the onnxruntime build, so no other extra (train, gui, ...) combined
with gpu brings the CPU build beside it (both builds in one environment break onnxruntime)."""
from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
RUNTIMES = {"onnxruntime", "onnxruntime-gpu"}


def project() -> dict:
    with PYPROJECT.open("rb") as fh:
        return tomllib.load(fh)["project"]


def requirement_name(requirement: str) -> tuple[str, list[str]]:
    """'unveil[cpu,gui]' -> ('unveil', ['cpu', 'gui']); 'torch==2.13.0' -> ('torch', [])."""
    match = re.match(r"\s*([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?", requirement)
    name = match.group(1).lower().replace("_", "-")
    extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
    return name, extras


def resolve(extras: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(every distribution that `pip install 'unveil[extras]'` asks for, every extra it reaches via unveil[...])."""
    meta = project()
    own = meta["name"].lower()
    names = {requirement_name(r)[0] for r in meta["dependencies"]}
    todo, reached = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in reached:
            continue
        reached.add(extra)
        for requirement in meta["optional-dependencies"][extra]:
            name, nested = requirement_name(requirement)
            if name == own:
                todo.extend(nested)
            else:
                names.add(name)
    return names, reached


def installed_by(extras: tuple[str, ...]) -> set[str]:
    return resolve(extras)[0]


def test_only_the_cpu_and_gpu_extras_choose_the_onnxruntime_build():
    """So no combination installs both builds unless it asks for both runtimes (e.g. `gpu,train` installs one)."""
    extras = sorted(project()["optional-dependencies"])
    checked = 0
    for count in range(len(extras) + 1):
        for combination in itertools.combinations(extras, count):
            names, reached = resolve(combination)
            label = f"unveil[{','.join(combination)}]"
            assert ("onnxruntime" in names) == ("cpu" in reached), f"{label}: onnxruntime without the cpu extra"
            assert ("onnxruntime-gpu" in names) == ("gpu" in reached), f"{label}: onnxruntime-gpu without the gpu extra"
            if not {"cpu", "gpu"} <= reached:
                assert not RUNTIMES <= names, f"{label} installs both onnxruntime builds"
            checked += 1
    assert checked == 2 ** len(extras)


def test_each_runtime_extra_brings_one_onnxruntime_and_dev_brings_everything_for_the_suite():
    assert RUNTIMES & installed_by(("cpu",)) == {"onnxruntime"}
    assert RUNTIMES & installed_by(("gpu",)) == {"onnxruntime-gpu"}
    assert RUNTIMES & installed_by(("gpu", "train")) == {"onnxruntime-gpu"}
    assert RUNTIMES & installed_by(("train",)) == set()
    dev = installed_by(("dev",))
    for extra in ("cpu", "gui", "train"):
        assert installed_by((extra,)) <= dev
    assert "pytest" in dev
