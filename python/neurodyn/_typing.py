"""Type aliases shared by the annotations of the public API (for type checkers; nothing here
is needed at run time)."""
from __future__ import annotations

import os
from typing import Union

import numpy as np

#: A seed: None (fresh entropy), a non-negative int, or a Generator drawn from.
Seed = Union[int, np.random.Generator, None]
#: A file path.
PathLike = Union[str, "os.PathLike[str]"]
