"""Running the endpoint, always as a real HTTP server (uvicorn) on a port: in the foreground
(``fraud-mlops serve``), in a background thread of this process (the tests), or in a child process
(:class:`ServerProcess`: the replay and the benchmark, so that their client does not share the
server's interpreter lock; ``python -m fraud_mlops.serving.server`` is that process)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Self

import uvicorn
from fastapi import FastAPI

__all__ = ["BackgroundServer", "ServerProcess", "free_port", "main", "serve_forever"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve_forever(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``app`` until interrupted (Ctrl-C)."""
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


class BackgroundServer:
    """``app`` served by uvicorn in a daemon thread, as a context manager.

    Args:
        app: the FastAPI app.
        host: address to listen on (loopback by default).
        port: port, or 0 for a free one (see :attr:`url`).

    Raises:
        RuntimeError: the server did not start within 30 seconds.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port or free_port(host)
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning",
                                                     access_log=False, lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, name="fraud-serving", daemon=True)

    @property
    def url(self) -> str:
        """``http://<host>:<port>``."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the scoring server did not start on {self.url}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


class ServerProcess:
    """The endpoint of a target in a child process (``python -m fraud_mlops.serving.server``), as a
    context manager that waits until ``/health`` answers 200 and stops the process on exit.

    Args:
        catalog, schema: the target's catalog and the online store's schema.
        model_name: the registered model whose ``@champion`` is served.
        host, port: where to listen (a free port on 127.0.0.1 by default).
        env: extra environment variables of the child (it inherits this process's, including
            ``FRAUD_MLOPS_ONLINE_STORE`` and ``FRAUD_MLOPS_LOCAL_ROOT``).

    Raises:
        RuntimeError: the server exited, or was not healthy within ``start_timeout`` seconds (its
            output is in the message).
    """

    def __init__(self, catalog: str, schema: str, model_name: str, host: str = "127.0.0.1", port: int = 0,
                 env: dict[str, str] | None = None, start_timeout: float = 120.0):
        self.host, self.port = host, port or free_port(host)
        self.command = [sys.executable, "-m", "fraud_mlops.serving.server", "--catalog", catalog, "--schema", schema,
                        "--model-name", model_name, "--host", host, "--port", str(self.port)]
        self.env = {**os.environ, **(env or {})}
        self.start_timeout = start_timeout
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """``http://<host>:<port>``."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Self:
        import requests

        self._process = subprocess.Popen(self.command, env=self.env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process.poll() is not None:
                output = self._process.stdout.read() if self._process.stdout else ""
                raise RuntimeError(f"the scoring server exited with status {self._process.returncode}: {output[-2000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the scoring server on {self.url} was not healthy within {self.start_timeout} s")
            time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stdout:
            self._process.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fraud_mlops.serving.server --catalog C --schema S --model-name M [--host H] [--port P]``:
    serve that target's ``@champion`` from the online store of ``$FRAUD_MLOPS_ONLINE_STORE`` until stopped."""
    from fraud_mlops.serving.app import build_scorer, create_app

    parser = argparse.ArgumentParser(prog="python -m fraud_mlops.serving.server")
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--poll-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    scorer = build_scorer(args.catalog, args.schema, args.model_name, poll_seconds=args.poll_seconds)
    serve_forever(create_app(scorer), args.host, args.port)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
