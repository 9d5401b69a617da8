"""Short critical sections that a Ctrl-C must not cut in half.

Python raises ``KeyboardInterrupt`` between any two bytecodes of the main
thread, so a model restored or committed by several assignments can be left
half-done. :func:`interrupts_deferred` holds back SIGINT for the length of such
a section and delivers it as soon as the section is complete.
"""

import signal
import threading
from contextlib import contextmanager

__all__ = ["interrupts_deferred"]


@contextmanager
def interrupts_deferred():
    """Hold back SIGINT inside the block; deliver it to the previous handler at its end.

    Only the main thread receives signals in Python, and only it may change
    their handlers: elsewhere (and where SIGINT has no Python-level handler to
    chain to) the block runs unprotected, as it would without this.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            previous(signal.SIGINT, received[0])
