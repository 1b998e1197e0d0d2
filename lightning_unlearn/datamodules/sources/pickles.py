"""Reading pickled numpy arrays without letting the file run code.

Some datasets ship as pickles (the CIFAR batches) or as ``.npz`` archives whose object arrays
are pickled (Keras's Reuters). A pickle may name any importable callable and have it run on
load; :class:`NumpyOnlyUnpickler` resolves only what a numpy array needs and refuses the rest,
so such a file can be read without trusting it.
"""

from __future__ import annotations

import codecs
import importlib
import pickle
from typing import Any, ClassVar

import numpy as np

__all__ = ["NumpyOnlyUnpickler"]


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, and refuses to import anything else.

    A pickle may run any code it names; a data file (a CIFAR batch, an object array inside an
    ``.npz``) has no reason to name more than numpy's array reconstruction (and
    ``_codecs.encode``, which Python 3 uses to store bytes in protocol 2).

    Example:
        >>> import io
        >>> payload = pickle.dumps({"data": np.arange(3)})
        >>> NumpyOnlyUnpickler(io.BytesIO(payload)).load()["data"].tolist()
        [0, 1, 2]
        >>> NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(print))).load()  # a callable, not an array
        Traceback (most recent call last):
        ...
        _pickle.UnpicklingError: refusing to load builtins.print, which is not part of a numpy array
    """

    _allowed: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}, which is not part of a numpy array")
        if module == "numpy":
            return getattr(np, name)
        if module == "_codecs":
            return codecs.encode
        # Python 2 era files name numpy.core, which NumPy 2 renamed to numpy._core.
        try:
            multiarray = importlib.import_module("numpy._core.multiarray")
        except ImportError:
            multiarray = importlib.import_module("numpy.core.multiarray")
        return getattr(multiarray, name)
