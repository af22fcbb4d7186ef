"""An object whose unpickling runs code: the stand-in for a hostile file in the loader tests."""

FIRED = []


def _trap():
    FIRED.append(True)
    return "boom"


class Trap:
    """Unpickling this object calls ``_trap`` (a stand-in for arbitrary code)."""

    def __reduce__(self):
        return (_trap, ())
