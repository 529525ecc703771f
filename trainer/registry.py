"""Name -> builder registries, so configs choose networks, discriminators, losses and schedules by name."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def add(builder: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = builder
            return builder

        return add

    def build(self, name: str, **kwargs: Any) -> Any:
        if name not in self._builders:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._builders)) or 'none'}")
        return self._builders[name](**kwargs)

    def get(self, name: str) -> Callable[..., Any]:
        """The registered builder itself (a class or a function), without calling it."""
        if name not in self._builders:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._builders)) or 'none'}")
        return self._builders[name]

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: str) -> bool:
        return name in self._builders


NETWORKS = Registry("network")
DISCRIMINATORS = Registry("discriminator")
LOSSES = Registry("loss")
SCHEDULES = Registry("schedule")


def import_networks() -> dict[str, str]:
    """Import every module of trainer.networks, so each registers its networks and discriminators.

    A module that fails to import does not hide the others: returns {module name: error} of those that failed."""
    package = importlib.import_module("trainer.networks")
    failures: dict[str, str] = {}
    for info in pkgutil.iter_modules(package.__path__):
        try:
            importlib.import_module(f"{package.__name__}.{info.name}")
        except Exception as exc:  # noqa: BLE001 - a broken module must not stop the networks that do import
            failures[info.name] = f"{type(exc).__name__}: {exc}"
    return failures
