"""SIGINT and SIGTERM for every `xenpin` command: stop at once, whatever is running.

While a command runs (`handled()`), both signals raise KeyboardInterrupt in the main thread, and `main()`
turns that into one line on stderr and exit 128 + the signal's number (130, 143). Python runs a signal handler
only between bytecodes, so a long z3 call (C code) would delay it until the call ends; and z3's own Ctrl-C
handling would turn the signal into an `unknown` answer. So z3's is off while our handler is in place
(`xenpin.symbolic.solver.configure`), and the byte Python's C-level handler writes to the wakeup fd
(`signal.set_wakeup_fd`) wakes a watcher thread that interrupts the running z3 call (`Context.interrupt`, made
for another thread); the pending handler then raises as soon as the call returns. Worker processes are killed by `xenpin.symbolic.batch` as the KeyboardInterrupt
unwinds. Should something still not give way (a cvc5 call cannot be interrupted), the watcher ends the process
itself after `BACKSTOP_S`. A signal that arrives while a finaliser runs (z3 frees its C objects in `__del__`,
where a raised exception is printed as "Exception ignored" and dropped) or inside z3's Python wrappers (where it
would leave a half-built object behind) is raised in the frame that called them, at its next line (a local trace
function on that frame, as `pdb.set_trace` sets one).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)
BACKSTOP_S = 2.0  # after a signal, the longest the normal unwinding may take before the watcher exits itself

_received: int | None = None
_deferred = False


def received() -> int | None:
    """The first SIGINT/SIGTERM since `handled()` began, or None."""
    return _received


def message(signum: int) -> str:
    """The one line a stopped command prints."""
    return "xenpin: terminated" if signum == signal.SIGTERM else "xenpin: interrupted"


def exit_code(signum: int) -> int:
    """The shell's code for a command a signal stopped: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


def _z3_dir() -> str | None:
    z3 = sys.modules.get("z3")
    path = getattr(z3, "__file__", None)
    return os.path.dirname(path) + os.sep if path else None


def _outermost_unsafe(frame: FrameType | None) -> FrameType | None:
    """The outermost frame of the stack at `frame` where a raised KeyboardInterrupt would be lost or leave a
    half-built object behind, or None when it is safe to raise at `frame`:

    - a `__del__` (z3's objects free their C side there): an exception raised in one is printed as
      "Exception ignored in ..." and dropped, so the command would run on;
    - z3's own Python wrappers: z3's constructors make the C object first and set their fields after
      (`Context.__init__` sets `owner` after `Z3_mk_context_rc`), and the signal's handler runs as soon as the
      C call returns, so the half-built object's `__del__` would then fail with "Exception ignored in ...".
    """
    z3_dir = _z3_dir()
    outermost = None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or (z3_dir is not None and code.co_filename.startswith(z3_dir)):
            outermost = frame
        frame = frame.f_back
    return outermost


def _raise_on_next_line(frame: FrameType, event: str, arg: object) -> None:
    global _deferred
    _deferred = False
    raise KeyboardInterrupt  # from a trace function: it propagates in `frame`, and tracing is switched off


def _no_new_frames(frame: FrameType, event: str, arg: object) -> None:
    return None  # the global trace function must be set for a frame's own one to run; it traces nothing else


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _received, _deferred
    if _received is not None and not _deferred:  # a second Ctrl-C while unwinding: the first is honoured
        return
    _received = signum
    unsafe = _outermost_unsafe(frame)
    if unsafe is None or unsafe.f_back is None:
        _deferred = False
        raise KeyboardInterrupt
    _deferred = True  # raised in the caller as soon as the finaliser or z3 call has returned to it
    caller = unsafe.f_back
    caller.f_trace_lines = True
    caller.f_trace = _raise_on_next_line
    sys.settrace(_no_new_frames)


def _interrupt_z3() -> None:
    solver = sys.modules.get("xenpin.symbolic.solver")
    if solver is not None:
        solver.interrupt_requested.set()  # before the interrupt, so that the `unknown` it causes is seen as one
    z3 = sys.modules.get("z3")
    if z3 is not None and getattr(z3.z3, "_main_ctx", None) is not None:
        # After the C call, z3's wrapper reads the context's error code, which the main thread's own calls set
        # meanwhile (a call this interrupt cancels sets one), and raises it here: the interrupt is made, and the
        # watcher (`_watch`) drops that exception.
        z3.main_ctx().interrupt()


def _forget_interrupt() -> None:
    solver = sys.modules.get("xenpin.symbolic.solver")
    if solver is not None:
        solver.interrupt_requested.clear()


def _watch(reader: socket.socket, done: threading.Event) -> None:
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        if not data:
            return
        signums = [b for b in data if b in HANDLED]
        if not signums:
            continue
        with contextlib.suppress(Exception):  # z3's error of the main thread's call (`_interrupt_z3`)
            _interrupt_z3()
        if done.wait(BACKSTOP_S):
            return
        # the main thread did not come back (a call that cannot be interrupted): end the process here
        for child in multiprocessing.active_children():
            with contextlib.suppress(OSError):
                child.kill()
        signum = _received or signums[0]
        with contextlib.suppress(OSError):
            os.write(2, (message(signum) + "\n").encode())
        os._exit(exit_code(signum))


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt (and interrupt z3) inside the block; the previous handlers
    and wakeup fd come back afterwards. Outside the main thread (signals cannot be handled there) it does
    nothing."""
    global _received, _deferred
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received, _deferred = None, False
    _forget_interrupt()
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    done = threading.Event()
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(reader, done), name="xenpin-signals", daemon=True)
    watcher.start()
    try:
        for signum in HANDLED:
            signal.signal(signum, _on_signal)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(old_fd)
        if sys.gettrace() is _no_new_frames:  # armed for a caller that never ran another line
            sys.settrace(None)
        _forget_interrupt()
        done.set()
        with contextlib.suppress(OSError):
            writer.shutdown(socket.SHUT_RDWR)
        writer.close()
        watcher.join(timeout=1.0)
        reader.close()
