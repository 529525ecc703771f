"""File descriptor 2, where C and C++ libraries (mediapipe, libjpeg, libpng, OpenCV) write their own messages, past
Python's sys.stderr. They are meant for the libraries' developers; Unveil keeps them off the user's terminal and,
where they say something about the input (a damaged JPEG), counts them and reports them in its own words.

While any window is open, fd 2 points at one temporary file; nested and concurrent windows share that redirect (one
count under a lock), so fd 2 is always restored, and each window gets the complete lines written between its start
and its end. A window that overlaps another's gets that one's lines too: mediapipe's (glog / TFLite format) are
recognised and left out; Python's own stderr writes from other threads land there as well (as before, when the
windows went to /dev/null), a progress bar's redraws are no lines.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

NATIVE_LOGS_ENV = "UNVEIL_NATIVE_LOGS"  # "1" (set by `unveil -v`): let the libraries' lines through

# mediapipe's own lines: glog / absl ("W0000 00:00:1796611266.827286 5644 file.cc:114] ...") and TFLite ("INFO: ...")
MEDIAPIPE_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:|INFO: |WARNING: All log messages before absl)")

_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None
_file = None  # the temporary file fd 2 points at while redirected; made once, emptied at each outermost window


@contextlib.contextmanager
def native_stderr_lines() -> Iterator[list[str]]:
    """Redirect fd 2 for the duration; the yielded list receives the complete lines written meanwhile, at exit."""
    lines: list[str] = []
    if os.environ.get(NATIVE_LOGS_ENV) == "1":
        yield lines
        return
    with _lock:
        start = _enter()
    try:
        yield lines
    finally:
        with _lock:
            lines.extend(_leave(start))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """fd 2 out of the way for the duration; what was written is dropped (Python's own stderr writes included)."""
    with native_stderr_lines():
        yield


def _enter() -> int | None:
    """Start of this window in the file (None: not redirected, e.g. no fd 2)."""
    global _depth, _saved_fd, _file
    if _depth == 0:
        try:
            sys.stderr.flush()
            if _file is None:
                _file = tempfile.TemporaryFile()
            os.ftruncate(_file.fileno(), 0)
            os.lseek(_file.fileno(), 0, os.SEEK_SET)
            saved = os.dup(2)
            os.dup2(_file.fileno(), 2)
            _saved_fd = saved
        except (OSError, ValueError, AttributeError):  # no fd 2 / a stderr without a file: leave it alone
            _saved_fd = None
    _depth += 1
    return os.fstat(_file.fileno()).st_size if _saved_fd is not None else None


def _leave(start: int | None) -> list[str]:
    global _depth, _saved_fd
    _depth -= 1
    data = b""
    if start is not None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        end = os.fstat(_file.fileno()).st_size
        data = os.pread(_file.fileno(), end - start, start)
    if _depth == 0 and _saved_fd is not None:
        os.dup2(_saved_fd, 2)
        os.close(_saved_fd)
        _saved_fd = None
    # complete lines only: a progress bar's redraw ("\r..." without a newline) is not a message
    complete = data.decode(errors="replace").split("\n")[:-1]
    texts = [line.rsplit("\r", 1)[-1].strip() for line in complete]
    return [text for text in texts if text and not MEDIAPIPE_LINE.match(text)]
