"""Pickles whose bytes depend only on what an object holds, not on how it was built.

Pickle writes a shared object once and refers back to it, so its bytes follow object identity: a fitted
model whose attribute name `"C"` happens to be the same object as another `"C"` (as on Python 3.13, not
on 3.11) pickles differently though it holds the same values. Unpickling builds the identity structure
from the bytes alone, so a pickle of the unpickled object is the same on every supported Python.
"""

import pickle

PROTOCOL = 5


def dumps(obj: object) -> bytes:
    """The canonical pickle of `obj`: pickled, unpickled and pickled again."""
    return pickle.dumps(pickle.loads(pickle.dumps(obj, protocol=PROTOCOL)), protocol=PROTOCOL)
