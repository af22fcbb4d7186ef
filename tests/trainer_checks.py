"""A check shared by layer and docs tests: one full-BPTT epoch of the trainer equals one step by hand."""

import numpy as np

import minidl as mdl


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
