"""The batched program's inference (jax.numpy) against the host's (NumPy), case by case."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmle as jm
from jaxmle.inference import observed_inference

rng = np.random.default_rng(0)
A = rng.normal(size=(3, 3))
CASES = {
    "positive definite": (A @ A.T + np.eye(3), None, [False, False, False]),
    "singular": (np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]), None, [False] * 3),
    "indefinite": (np.diag([1.0, -1.0, 2.0]), None, [False] * 3),
    "not finite": (np.array([[1.0, np.nan, 0.0], [np.nan, 1.0, 0.0], [0.0, 0.0, 2.0]]), None, [False] * 3),
    "at a kink": (A @ A.T + np.eye(3), None, [False, True, False]),
    # a simplex of three weights from two free log-ratios: J = dx/dz is 3 x 2
    "with a Jacobian": (
        np.array([[2.0, 0.5], [0.5, 1.0]]),
        np.array([[0.2, -0.1], [-0.1, 0.3], [-0.1, -0.2]]),
        [False] * 2,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_device_inference_matches_the_host(case):
    info, J, kink = CASES[case]
    kink = np.array(kink)
    host = observed_inference(info, J, kink)
    with jax.enable_x64(True):
        device = jax.jit(lambda i, k: observed_inference(i, None if J is None else jnp.asarray(J), k, xp=jnp))(
            jnp.asarray(info), jnp.asarray(kink)
        )
    for name in ("information", "cov", "se", "condition_number"):
        np.testing.assert_allclose(np.asarray(getattr(device, name)), getattr(host, name), rtol=1e-12, atol=1e-14)
    # an eigenvector's sign is the LAPACK build's choice
    d, h = np.asarray(device.null_direction), host.null_direction
    np.testing.assert_allclose(d * np.sign(np.nansum(d * h)), h, rtol=1e-10, atol=1e-12)
    for name in ("positive_definite", "at_kink", "finite", "indefinite"):
        np.testing.assert_array_equal(np.asarray(getattr(device, name)), getattr(host, name))


def test_batch_reports_what_single_fits_report():
    # an unidentified replicate (a duplicated column) among identified ones
    rng = np.random.default_rng(1)
    X = np.concatenate([np.ones((4, 40, 1)), rng.normal(size=(4, 40, 2))], axis=2)
    X[2, :, 2] = X[2, :, 1]
    y = X @ np.array([1.0, 0.5, -0.5]) + rng.normal(size=(4, 40))

    def loglik(p, d):
        return -0.5 * (d["y"] - d["X"] @ p["b"]) ** 2

    batch = jm.fit_batch(loglik, {"b": np.zeros(3)}, {"X": X, "y": y}, progress=False)
    assert list(batch.positive_definite) == [True, True, False, True]
    for i in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jm.FitWarning)
            single = jm.fit(loglik, {"b": np.zeros(3)}, {"X": X[i], "y": y[i]})
        np.testing.assert_allclose(batch.cov[i], single.cov, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(batch.condition_number[i], single.condition_number, rtol=1e-8)
        assert batch[i].notes == single.notes
