"""Text helpers for token models: a character vocabulary, parallel streams for TBPTT, and sampling."""

import numpy as np

from ._checks import as_int_array, finite_number, fmt_shape, generator, non_negative_int, positive_int
from ._random import get_rng
from .streaming import Stream

__all__ = ["Vocabulary", "make_streams", "sample_logits", "sample"]


class Vocabulary:
    """The distinct characters of a text, sorted; a character's id is its position in ``chars``.

    ``Vocabulary("abcab ca").chars == [" ", "a", "b", "c"]``; ``encode`` maps a string to
    ``(len,)`` int64 ids, ``decode`` maps ids (any shape, read in order) back to a string.

    Args:
        text: str, non-empty; its distinct characters make the vocabulary.

    Raises:
        TypeError: ``text`` is not a str.
        ValueError: ``text`` is empty.
    """

    def __init__(self, text):
        if not isinstance(text, str):
            raise TypeError(f"Vocabulary: text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("Vocabulary: the text is empty")
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def __repr__(self):
        return f"Vocabulary({len(self)} characters)"

    def encode(self, text):
        """The ids of the characters of ``text``.

        Args:
            text: str, of characters of the vocabulary.

        Returns:
            ``(len(text),)`` int64 ids.

        Raises:
            TypeError: ``text`` is not a str.
            ValueError: a character is not in the vocabulary (the message lists them).
        """
        if not isinstance(text, str):
            raise TypeError(f"Vocabulary.encode: text must be a str, got {type(text).__name__}")
        missing = sorted(set(text) - set(self.index))
        if missing:
            raise ValueError(f"Vocabulary.encode: characters not in the vocabulary: {missing!r}")
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids):
        """The characters of ``ids`` as one string.

        Args:
            ids: integer array, any shape (read in order), of values in ``[0, len(self))``.

        Returns:
            The str of their characters.

        Raises:
            TypeError: ``ids`` is not an integer array.
            ValueError: an id is outside ``[0, len(self))``.
        """
        ids = as_int_array(ids, "ids", "Vocabulary.decode").ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"Vocabulary.decode: ids must lie in [0, {len(self) - 1}], "
                             f"got values in [{ids.min()}, {ids.max()}]")
        return "".join(self.chars[i] for i in ids)


def make_streams(ids, batch):
    """Cut ``ids: (N,)`` into ``batch`` consecutive streams ``(batch, N // batch)`` (the tail is dropped).

    Stream ``b`` is ``ids[b * L : (b + 1) * L]`` with ``L = N // batch``: row ``b`` read left to
    right is a contiguous piece of the text, so the state a TBPTT trainer carries along a row
    (``fit(x, y, batch_size=batch, shuffle=False)`` with ``x = streams[:, :-1]``,
    ``y = streams[:, 1:]``) is always the state of the text just read.

    Args:
        ids: ``(N,)`` integer token ids.
        batch: int >= 1, the number of streams.

    Returns:
        ``(batch, N // batch)`` int array, a copy.

    Raises:
        TypeError: ``ids`` is not an integer array, or ``batch`` not an int.
        ValueError: ``ids`` is not 1-D, ``batch < 1``, or a stream would be shorter than 2.
    """
    ids = as_int_array(ids, "ids", "make_streams")
    batch = positive_int(batch, "batch", "make_streams")
    if ids.ndim != 1:
        raise ValueError(f"make_streams: expected ids of shape (N,), got {fmt_shape(ids.shape)}")
    length = len(ids) // batch
    if length < 2:
        raise ValueError(f"make_streams: {len(ids)} tokens are too few for {batch} streams of at least 2")
    return ids[: batch * length].reshape(batch, length).copy()


def sample_logits(logits, temperature=1.0, seed=None):
    """One token per row of ``logits: (B, V)`` (or one for ``(V,)``), drawn from
    ``softmax(logits / temperature)``.

    A temperature below 1 sharpens the distribution, above 1 flattens it; as it goes to 0
    the draw becomes the argmax, and ``temperature=0`` is exactly that, greedy decoding (no
    random number drawn; ties go to the lowest id). Each row uses one uniform number
    ``u``: the token is the first whose cumulative probability exceeds ``u``.

    Args:
        logits: ``(B, V)`` or ``(V,)``, finite real numbers, ``V >= 1``.
        temperature: finite float >= 0; default 1.0.
        seed: an int >= 0, a ``numpy.random.Generator`` (drawn from, so successive calls
            go on), or None (the default) for minidl's global generator (``minidl.set_seed``).

    Returns:
        int64 ids, ``(B,)`` (or a scalar for ``(V,)``).

    Raises:
        TypeError: ``temperature`` is not a number, or ``seed`` is not None, an int >= 0
            or a Generator.
        ValueError: ``temperature`` is negative or not finite, ``logits`` is not ``(B, V)``
            or ``(V,)`` with ``V >= 1``, or not finite.
    """
    owner = "sample_logits"
    temperature = finite_number(temperature, "temperature", owner, minimum=0.0)
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim not in (1, 2) or z.shape[-1] == 0:
        raise ValueError(f"{owner}: expected logits of shape (B, V) or (V,), got {fmt_shape(z.shape)}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{owner}: logits must be finite")
    rows = np.atleast_2d(z)
    rng = generator(seed, owner) or get_rng()
    if temperature == 0.0:
        ids = rows.argmax(axis=1)
    else:
        # subtract the maximum first: (z - max) / T stays finite for any T > 0
        p = np.exp((rows - rows.max(axis=1, keepdims=True)) / temperature)
        cdf = np.cumsum(p, axis=1)
        u = rng.random((len(rows), 1)) * cdf[:, -1:]
        ids = np.minimum((cdf <= u).sum(axis=1), rows.shape[1] - 1)
    ids = ids.astype(np.int64)
    return ids[0] if z.ndim == 1 else ids


def sample(model, prompt, length, temperature=1.0, seed=None, vocab=None):
    """Continue ``prompt`` by ``length`` tokens drawn from a token model, one at a time.

    The model maps tokens ``(B, T)`` to logits: ``(B, T, V)`` (many-to-many, e.g.
    ``Embedding -> RNN(return_sequences=True) -> Dense(V)``) or ``(B, V)`` (many-to-one).
    A ``Stream`` reads the prompt in one chunk; then each new token is drawn with
    ``sample_logits(logits of the last step, temperature, rng)`` and fed back as the next
    step. The model is left as it was found (see ``Stream``): eval mode and ``no_grad``
    during sampling, its flags and carried states untouched.

    Args:
        model: a ``Layer`` whose input is tokens.
        prompt: a str (needs ``vocab``), or token ids ``(P,)``, or ``(B, P)`` for ``B``
            continuations at once (rows advance together); at least one token.
        length: number of new tokens, >= 0.
        temperature: >= 0; 0 is greedy decoding (the argmax at every step).
        seed: int, ``numpy.random.Generator`` or None (minidl's global generator): the same
            seed gives the same tokens.
        vocab: a ``Vocabulary`` (or anything with ``encode`` / ``decode``) for a str prompt.

    Returns:
        The new tokens only (without the prompt): a str for a str prompt, else int64 ids
        ``(length,)`` or ``(B, length)`` following the prompt's rank.

    Raises:
        TypeError: ``length`` is not an int, ``temperature`` not a number, ``seed`` not
            None, an int >= 0 or a Generator, ``prompt`` not a str or integer ids, or
            ``model`` not a ``Layer``.
        ValueError: ``length < 0``, ``temperature`` negative or not finite, a str prompt
            without ``vocab``, prompt ids not ``(P,)`` or ``(B, P)``, an empty prompt, a
            model that cannot be streamed, or logits not ``(B, T, V)`` or ``(B, V)``.
    """
    owner = "sample"
    length = non_negative_int(length, "length", owner)
    temperature = finite_number(temperature, "temperature", owner, minimum=0.0)
    rng = generator(seed, owner) or get_rng()
    if isinstance(prompt, str):
        if vocab is None:
            raise ValueError(f"{owner}: a str prompt needs vocab= to encode it, got vocab=None")
        ids = vocab.encode(prompt)[None]
    else:
        ids = as_int_array(prompt, "prompt", owner)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2:
            raise ValueError(f"{owner}: expected prompt ids of shape (P,) or (B, P), got {fmt_shape(ids.shape)}")
    if ids.shape[1] == 0:
        raise ValueError(f"{owner}: the prompt must hold at least one token (the model needs an input step)")
    stream = Stream(model)
    last = _last_step(stream(ids))
    out = np.empty((len(ids), length), dtype=np.int64)
    for i in range(length):  # each token is drawn from the logits after the one before
        out[:, i] = sample_logits(last, temperature, rng)
        if i + 1 < length:
            last = _last_step(stream.step(out[:, i]))
    if isinstance(prompt, str):
        return vocab.decode(out[0])
    return out[0] if np.ndim(prompt) == 1 else out


def _last_step(y):
    """The logits ``(B, V)`` of the last step of a stream's output (``(B, T, V)`` or ``(B, V)``)."""
    y = np.asarray(y)
    if y.ndim == 3:
        y = y[:, -1]
    if y.ndim != 2:
        raise ValueError(f"sample: the model must give logits (B, T, V) or (B, V), got shape {fmt_shape(y.shape)}")
    return y
