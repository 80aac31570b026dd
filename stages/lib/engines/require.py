"""The one check before a Ray engine loads: Ray is an optional install, so say how to get it."""
from __future__ import annotations

import importlib.util

from stages.lib.errors import UserError


def require_ray(key: str) -> None:
    """Raise a one-line UserError naming the params key when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise UserError(f"params.yaml: {key}: ray needs Ray, which is not installed: "
                        f"pip install 'ray[data]==2.60.0' (it is in requirements-dev.txt), or set {key}: local")
