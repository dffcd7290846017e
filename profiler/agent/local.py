"""An agent on this machine, in a subprocess: for trying the remote path, tests and benchmarks.

::

    LocalAgent(log).start() ──> python -m profiler.agent serve --host 127.0.0.1 --port P ...
        reads "export VIDLAT_AGENT_TOKEN=..." (generated token) and "listening on http://127.0.0.1:P"
        .url, .port, .token      .kill() (SIGKILL, as a crash)      .start() again: same port
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from profiler.agent.wire import TOKEN_ENV
from profiler.errors import VidlatError

START_TIMEOUT_S = 90.0


class LocalAgent:
    """``python -m profiler.agent serve`` on 127.0.0.1; ``token=None`` lets the agent generate one."""

    def __init__(self, log: str | Path, *args: str, port: int = 0, token: str | None = None) -> None:
        self.log = Path(log)
        self.args = args
        self.port = port
        self.token = token
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> "LocalAgent":
        """Start the agent (on the port of the last start, if any) and wait until it listens."""
        env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
        if self.token is not None:
            env[TOKEN_ENV] = self.token
        command = [sys.executable, "-m", "profiler.agent", "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        with open(self.log, "a", encoding="utf-8") as log:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        self.process = process
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if process.poll() is not None:
                    raise VidlatError(f"the local agent exited with code {process.returncode}; see {self.log}")
                continue
            if match := re.search(rf"export {TOKEN_ENV}=(\S+)", line):
                self.token = match.group(1)
            if match := re.search(r"listening on (http://127\.0\.0\.1:(\d+))", line):
                self.url, self.port = match.group(1), int(match.group(2))
                return self
        self.kill()
        raise VidlatError(f"the local agent did not start within {timeout_s:g} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL the agent (as a crash would); its measuring worker exits when its pipe closes."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def __enter__(self) -> "LocalAgent":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.kill()
