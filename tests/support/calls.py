"""Watching which functions a piece of code calls, through the interpreter's profiler (what py-spy or cProfile
see), so a test can say "no tensor was read" without a counter in the pack."""
from __future__ import annotations

import sys
from collections import Counter
from contextlib import contextmanager


@contextmanager
def calls_to(*functions):
    """Counts calls of `functions` (by code object) made in this thread inside the `with` block:
    `with calls_to(load_torch_file) as calls: ...; calls[load_torch_file]`."""
    codes = {f.__code__: f for f in functions}
    counts: Counter = Counter({f: 0 for f in functions})

    def profile(frame, event, _arg):
        if event == "call" and frame.f_code in codes:
            counts[codes[frame.f_code]] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield counts
    finally:
        sys.setprofile(previous)
