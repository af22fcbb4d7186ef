"""Files: the npz + JSON archive, the tree codec, model files and trainer checkpoints.

One place for everything minidl writes to or reads from disk, never with pickle:

- ``archive.py``     ``write_archive`` / ``read_archive``: numeric arrays plus a JSON header
                     in one ``.npz`` file, written atomically, read with ``allow_pickle=False``;
- ``tree.py``        ``encode_tree`` / ``decode_tree``: nested state (an optimizer's
                     ``state_dict``, a generator's state) as arrays plus JSON;
- ``model_file.py``  ``save_model`` / ``load_model``: format ``"minidl-model"``;
- ``checkpoint.py``  ``save_checkpoint(trainer, path)`` / ``load_checkpoint(trainer, path)``:
                     format ``"minidl-checkpoint"``.

This package imports only minidl's lower modules (``layers.layer`` for the class
registry, the dtype and random helpers); ``model`` and ``training`` import it.
"""

from .archive import read_archive, write_archive
from .checkpoint import load_checkpoint, save_checkpoint
from .model_file import load_model, save_model
from .tree import decode_tree, encode_tree

__all__ = ["write_archive", "read_archive", "encode_tree", "decode_tree", "save_model", "load_model",
           "save_checkpoint", "load_checkpoint"]
