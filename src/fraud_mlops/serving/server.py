"""Running the endpoint: in the foreground (``fraud-mlops serve``) or in a background thread of this
process (the replay, the tests and the benchmark), always as a real HTTP server (uvicorn) on a port."""

from __future__ import annotations

import socket
import threading
import time
from typing import Self

import uvicorn
from fastapi import FastAPI

__all__ = ["BackgroundServer", "serve_forever"]


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
        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
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
