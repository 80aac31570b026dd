"""One exception type for mistakes a user can fix, and the wrapper that reports it.

A `UserError` message names the file or params key and says what to do. The
stage prints it on one line and exits non-zero, without a traceback; any
other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import sys
from typing import Callable

from stages.lib.atomic import NO_SPACE, sweep_scratch


class UserError(Exception):
    """Bad input or bad params: the message tells the user what to change."""


EXIT_USER_ERROR = 2


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(), turning a UserError into a one-line message.

    A full disk is the user's to fix too: one line naming the file being written.
    First it removes what killed stages left in the scratch folder, so no temporary
    file outlives the next run, whichever stage that is.
    """
    try:
        sweep_scratch()
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except OSError as err:
        if err.errno not in NO_SPACE:
            raise
        where = f" writing {err.filename}" if err.filename else ""
        print(f"error: no space left on the device{where}: free some space and rerun", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
