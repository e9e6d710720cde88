"""The batched program's inference (jax.numpy) against the host's (NumPy), case by case, and the
two-parameter eigendecomposition against LAPACK and direct linear algebra."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmle as jm
from jaxmle.inference import observed_inference, symmetric_eigh

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
    # two parameters: the eigendecomposition by one Jacobi rotation instead of LAPACK
    "2 x 2 positive definite": (np.array([[4.0, 1.5], [1.5, 2.0]]), None, [False, False]),
    "2 x 2 singular": (np.array([[1.0, 2.0], [2.0, 4.0]]), None, [False, False]),
    "2 x 2 indefinite": (np.array([[1.0, 2.0], [2.0, 1.0]]), None, [False, False]),
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


def small_symmetric_matrices():
    rng = np.random.default_rng(2)
    B = rng.normal(size=(500, 2, 2)) * np.exp(rng.uniform(-30, 30, size=(500, 1, 1)))
    edge = [
        [[1.0, 0.0], [0.0, 1.0]],  # a double eigenvalue, no rotation
        [[2.0, 0.0], [0.0, 1.0]],  # diagonal, out of order
        [[1.0, 1e-300], [1e-300, 1.0]],  # a vanishing off-diagonal entry
        [[1.0, 1.0], [1.0, 1.0]],  # singular
        [[1e-20, 1.0], [1.0, 0.0]],
        [[0.0, 0.0], [0.0, 0.0]],
        [[1.0, 1e300], [1e300, -1.0]],
        [[1.0, -0.999999999], [-0.999999999, 1.0]],  # nearly singular, unit diagonal
    ]
    return np.concatenate([B + np.swapaxes(B, 1, 2), np.array(edge)])


@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax.numpy"])
def test_two_by_two_eigendecomposition_matches_lapack(xp):
    A = small_symmetric_matrices()
    with jax.enable_x64(True):
        w, V = (np.asarray(a) for a in symmetric_eigh(xp.asarray(A), xp))
    norm = np.max(np.abs(A), axis=(1, 2), keepdims=True)
    norm = np.where(norm > 0, norm, 1.0)
    # eigenvalues as accurate as LAPACK's: to round-off in the matrix norm, ascending
    eps = np.finfo(float).eps  # both sides carry round-off of a few eps in the norm
    np.testing.assert_allclose(w / norm[:, 0], np.linalg.eigvalsh(A) / norm[:, 0], rtol=0, atol=4 * eps)
    # orthonormal eigenvectors that reproduce the matrix
    np.testing.assert_allclose(np.swapaxes(V, 1, 2) @ V, np.broadcast_to(np.eye(2), A.shape), rtol=0, atol=1e-15)
    np.testing.assert_allclose((V * w[:, None, :]) @ np.swapaxes(V, 1, 2) / norm, A / norm, rtol=0, atol=1e-15)
    # each column is the eigenvector LAPACK finds, up to sign, where the eigenvalues are apart
    _, V_ref = np.linalg.eigh(A)
    apart = np.abs(w[:, 1] - w[:, 0]) > 1e-8 * norm[:, 0, 0]
    overlap = np.abs(np.sum(V * V_ref, axis=1))[apart]
    np.testing.assert_allclose(overlap, 1.0, rtol=0, atol=1e-8)


def test_two_parameter_inference_against_direct_linear_algebra():
    info = np.array([[4.0, 1.5], [1.5, 2.0]])
    inf = observed_inference(info, None, np.zeros(2, bool))
    np.testing.assert_allclose(inf.cov, np.linalg.inv(info), rtol=1e-14)
    scaled = info / np.sqrt(np.outer(np.diag(info), np.diag(info)))
    np.testing.assert_allclose(inf.condition_number, np.linalg.cond(scaled), rtol=1e-14)

    singular = observed_inference(np.array([[1.0, 2.0], [2.0, 4.0]]), None, np.zeros(2, bool))
    assert not singular.positive_definite and np.all(np.isnan(singular.se))
    # the unidentified combination: x1 - x0/2 moves the log-likelihood not at all
    np.testing.assert_allclose(singular.null_direction * np.sign(singular.null_direction[0]), [1.0, -0.5], rtol=1e-14)
