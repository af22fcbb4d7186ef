"""The fit-equals-one-manual-step check, a small recurrent model, its data and an Adam trainer."""

import numpy as np

import minidl as mdl


# ---- the trainer ------------------------------------------------------------------------
def assert_fit_is_one_manual_step(build, loss_cls, x, y, lr, rtol=1e-6, atol=1e-7):
    """``build()`` makes the same model twice; one ``fit`` epoch on the whole batch (SGD, no
    truncation, no shuffle) must give the weights of forward, backward and one SGD step by hand.
    Returns the input gradient of the manual backward."""
    manual = build()
    loss = loss_cls()
    loss(manual(x), y)
    dx = manual.backward(loss.backward())
    mdl.SGD(manual.parameters(), lr=lr).step()

    model = build()
    trainer = mdl.TBPTTTrainer(model, loss_cls(), mdl.SGD(model.parameters(), lr=lr), seed=0)
    trainer.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0)
    for name, value in manual.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value, rtol=rtol, atol=atol, err_msg=name)
    return dx


def small_rnn_model(kind=mdl.LSTMCell, seq=False, H=4, F=2, out=1):
    """``RNN(kind(F, H), return_sequences=seq)`` then ``Dense(H, out)``."""
    return mdl.Sequential([mdl.RNN(kind(F, H), return_sequences=seq), mdl.Dense(H, out)])


def random_sequences(n=10, T=6, F=2, out=1, seq=False, seed=0):
    """float32 ``x: (n, T, F)`` and ``y: (n, T, out)`` (``seq``) or ``(n, out)``, standard normal."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, T, F)).astype(np.float32)
    y = rng.standard_normal((n, T, out) if seq else (n, out)).astype(np.float32)
    return x, y


def adam_trainer(model, lr=0.05, **kw):
    """A ``TBPTTTrainer`` with ``MSELoss`` and ``Adam(lr)``; ``kw`` go to the trainer."""
    return mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=lr), **kw)
