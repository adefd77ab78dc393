"""A stand-in for installed entry points: the runner's tests run jobs without Spark or MLflow."""

from __future__ import annotations

from typing import Any

from bundlekit import task_runtime as runtime


class FakeEntryPoints:
    """A resolver returning fake task functions that record their argv (and may set task values)."""

    def __init__(self, behaviours: dict[str, Any] | None = None) -> None:
        self.behaviours = behaviours or {}
        self.calls: list[tuple[str, list[str]]] = []
        self.task_keys: list[str] = []

    def __call__(self, package_name: str, entry_point: str):
        assert package_name == "fraud_mlops" or package_name == "pkg"

        def fake(argv: list[str] | None = None) -> dict[str, Any]:
            self.calls.append((entry_point, list(argv or [])))
            self.task_keys.append(runtime.CURRENT_TASK_KEY[0])
            behaviour = self.behaviours.get(entry_point)
            if callable(behaviour):
                return behaviour(argv)
            return {"entry_point": entry_point, "n_args": len(argv or [])}

        return fake

    @property
    def order(self) -> list[str]:
        return [ep for ep, _ in self.calls]

    def argv(self, entry_point: str) -> list[str]:
        return next(a for ep, a in self.calls if ep == entry_point)
