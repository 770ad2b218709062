"""Helpers of the robustness replay suite (issue 17): run the real ``policytag`` entry point
in-process, and bound the time a call may take."""

from __future__ import annotations

import contextlib
import io
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
JIANGXI = FIXTURES / "jiangxi-2023-kepu-cuoshi.txt"


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise ``TimeoutError`` in the main thread when the block runs longer than ``seconds``.

    A hang in the code under test then fails the test instead of stalling the suite."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"still running after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli("predict", "x", "-o", "y", stdin=b"...")`` runs ``policytag.cli.main.main`` (the
    console script: its error handling included) and returns exit code, stdout and stderr."""
    def run(*args, stdin: bytes | None = None) -> CliRun:
        from policytag.cli.main import main

        monkeypatch.setattr(sys, "argv", ["policytag", *map(str, args)])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        capsys.readouterr()
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run


def assert_one_line_error(res: CliRun, code: int, *needles: str) -> None:
    """A user-fixable error: the exit code, no traceback, the message on one line."""
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err and "Traceback" not in res.out, res.err
    errors = [line for line in res.err_lines if line.startswith("error:")]
    assert len(errors) == 1, res.err
    for n in needles:
        assert n in errors[0], (n, errors[0])
