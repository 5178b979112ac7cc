"""
pyinfra's order of operations, computed without ``inspect``. Installed by ``run.install``.

In a CLI run pyinfra orders operations by the line numbers of the code that called them
(``pyinfra.api.util.get_operation_order_from_stack``, once per operation and host). It reads
them with ``inspect.stack()``, which also looks up every frame's module (a walk over
``sys.modules`` for a frame of ``deploy.py``, which is no module) and source lines: 65 ms
of the control side's ~1.1 s of CPU for a cold deploy (issue 15: < 1 s per host). pyinfra
uses only each frame's file name and line number, which the frame holds itself; this
function returns the same list from them. Checked against pyinfra 3.10.0's
source (``CHECKED_SOURCE_SHA256``, ``run.checked``): on another pyinfra, installing it raises.
"""

from __future__ import annotations

import importlib
import sys

import pyinfra
from pyinfra.api import util as pyinfra_util

from run.checked import require

#: The module, not the ``operation`` decorator that ``pyinfra.api`` exports under its name.
pyinfra_operation = importlib.import_module("pyinfra.api.operation")

#: sha256 of the source of ``get_operation_order_from_stack`` that this module was checked against.
CHECKED_SOURCE_SHA256 = "f4807f61585570e091fd453c7552d9e2b49329555f07f395a8e8f1d2a398a0b2"


def operation_order_from_stack(state) -> list[int]:
    """pyinfra's ``get_operation_order_from_stack``, from the frames' own file names and line numbers."""
    frames = []
    frame = sys._getframe(1)  # pyinfra's starts with its own frame, which it then skips as pyinfra's
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()

    start = 0
    # from the *first* (outermost) frame of the deploy file; when it is not on the stack, from
    # pyinfra's innermost frame (its own, which it skips): none
    if state.current_deploy_filename:
        for start, frame in enumerate(frames):
            if frame.f_code.co_filename == state.current_deploy_filename:
                break
        else:
            start = len(frames)

    line_numbers = [state.current_op_file_number] if pyinfra.is_cli else []
    line_numbers.extend(
        frame.f_lineno for frame in frames[start:]
        if not frame.f_code.co_filename.startswith(pyinfra_util.PYINFRA_INSTALL_DIR)
    )
    return line_numbers


def install() -> bool:
    """Use ``operation_order_from_stack`` for this run (False: already in place); raises
    ``UncheckedPyinfra`` when pyinfra's function is not the checked one."""
    in_place = pyinfra_operation.get_operation_order_from_stack
    if in_place is operation_order_from_stack:
        return False
    require(in_place, CHECKED_SOURCE_SHA256, "the order of operations (run.op_order)")
    pyinfra_operation.get_operation_order_from_stack = operation_order_from_stack
    return True
