"""A pickle trap standing in for a hostile file: unpickling a ``Trap`` runs code (it must never happen)."""



# ---- hostile files: unpickling a Trap runs code (it must never happen) ------------------
FIRED = []


def _trap():
    FIRED.append(True)
    return "boom"


class Trap:
    """Unpickling this object calls ``_trap`` (a stand-in for arbitrary code)."""

    def __reduce__(self):
        return (_trap, ())
