"""Pickles whose bytes depend only on what an object holds, not on how it was built.

Pickle writes a shared object once and refers back to it, so its bytes follow object identity: a fitted
model whose attribute name `"C"` happens to be the same object as another `"C"` (as on Python 3.13, not
on 3.11) pickles differently though it holds the same values, and unpickling keeps that sharing. Without
the memo (the pickler's fast mode) every object is written out in full wherever it occurs, so equal
content gives equal bytes on every supported Python; the price is size where objects are shared (a
HistGradientBoosting model grows by about two thirds). Fast mode refuses cyclic objects with a ValueError.
"""

import io
import pickle

PROTOCOL = 5


def dumps(obj: object) -> bytes:
    """The canonical pickle of `obj`: protocol 5, no memo."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=PROTOCOL)
    pickler.fast = True
    pickler.dump(obj)
    return buffer.getvalue()
