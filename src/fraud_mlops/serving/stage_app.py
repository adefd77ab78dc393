"""Put this project's source into the Databricks App's source folder before a deploy.

The bundle's artifact ``serving_app`` (``databricks.yml``) runs ``python src/fraud_mlops/serving/stage_app.py``
when the CLI builds artifacts, before it uploads the bundle's files. It copies ``pyproject.toml``,
``README.md`` and ``src/`` (without caches) into ``serving_app/fraud-mlops/``, replacing what was
there. ``serving_app/pyproject.toml`` depends on that folder (a uv directory source), so the App
installs the very code of the deployed commit, built by uv in the App's Python 3.12 environment.

Why a source folder and not the bundle's wheel: a Databricks App installs with pip on Python 3.11 when
it has a ``requirements.txt``, and this package requires Python 3.12; with a ``pyproject.toml`` and a
``uv.lock`` (and no ``requirements.txt``) it installs with uv on the Python ``requires-python`` asks
for. uv records a wheel file's hash in ``uv.lock``, and every build of the wheel has another one, so
the lock would have to be remade at each deploy; a directory source has no hash, and ``uv.lock`` only
changes when the dependencies do (``tests/serving/test_databricks_app.py`` checks that it matches).

Only the standard library: the CLI runs this with whatever ``python`` deploys, before anything is
installed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

__all__ = ["STAGED_DIR", "stage"]

#: The folder (inside the App's source folder) that receives the project's source.
STAGED_DIR = "fraud-mlops"
_FILES = ("pyproject.toml", "README.md")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".DS_Store")


def stage(root: Path, app_dir: Path) -> Path:
    """Copy the project at ``root`` into ``app_dir/fraud-mlops`` (replaced whole) and return that folder.

    Raises:
        FileNotFoundError: ``root`` lacks ``pyproject.toml``, ``README.md`` or ``src/``, or ``app_dir``
            does not exist.
    """
    root, app_dir = Path(root).resolve(), Path(app_dir).resolve()
    for name in (*_FILES, "src"):
        if not (root / name).exists():
            raise FileNotFoundError(f"{root / name} not found: run from the bundle root")
    if not app_dir.is_dir():
        raise FileNotFoundError(f"the App's source folder {app_dir} does not exist")
    target = app_dir / STAGED_DIR
    staging = app_dir / f".{STAGED_DIR}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in _FILES:
        shutil.copy2(root / name, staging / name)
    shutil.copytree(root / "src", staging / "src", ignore=_IGNORED)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Copy the project's source into the Databricks App's folder.")
    parser.add_argument("--root", type=Path, default=Path("."), help="the bundle root (default: .)")
    parser.add_argument("--app-dir", type=Path, default=None, help="the App's source folder (default: ROOT/serving_app)")
    args = parser.parse_args(argv)
    try:
        target = stage(args.root, args.app_dir or args.root / "serving_app")
    except FileNotFoundError as exc:
        print(f"stage_app: {exc}", file=sys.stderr)
        return 2
    print(f"staged the project's source for the Databricks App in {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
