"""Convergence diagnostics of Markov chains (Vehtari, Gelman, Simpson, Carpenter and
Bürkner 2021, "Rank-normalization, folding, and localization: an improved R-hat for
assessing convergence of MCMC", Bayesian Analysis 16(2)).

Every function takes the draws of one scalar quantity as an array of shape (chains, draws).

- Split R-hat compares the variance between the half-chains (each chain cut in two) with the
  variance within them: it is 1 when all half-chains sample the same distribution and above
  1 when they disagree (chains stuck in different places, or a trend within a chain).
  ``rhat`` is the larger of the split R-hat of the rank-normalized draws (location) and of
  the rank-normalized distances from the median (scale, "folded"); 1.01 is the threshold
  recommended by the paper.
- The effective sample size (ESS) is the number of independent draws that would estimate a
  quantity as precisely as the correlated draws do: N / (1 + 2 Σ ρ_t), with the
  autocorrelations ρ_t combined over chains and truncated by Geyer's initial monotone
  sequence. ``ess_bulk`` is the ESS of the rank-normalized draws (the centre of the
  distribution); ``ess_tail`` the smaller ESS of the indicators of the 5% and 95% quantiles
  (the interval ends); ``ess_mean`` the ESS of the draws themselves, which gives the Monte
  Carlo standard error of the posterior mean, ``mcse_mean = sd / sqrt(ess_mean)``.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = ["rhat", "ess_bulk", "ess_tail", "ess_mean", "mcse_mean"]


def _chains(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] < 4:
        raise ValueError(f"draws must have shape (chains, draws) with at least 4 draws, got {x.shape}")
    return x


def _split(x: np.ndarray) -> np.ndarray:
    """Each chain cut into its first and second half (the middle draw of an odd length dropped)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, -half:]], axis=0)


def _rank_normalize(x: np.ndarray) -> np.ndarray:
    """Φ⁻¹((r - 3/8) / (S + 1/4)) of the pooled ranks r (ties averaged), S draws in all."""
    values, inverse, counts = np.unique(x.ravel(), return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    p = (average_rank[inverse] - 0.375) / (x.size + 0.25)
    return np.asarray([NormalDist().inv_cdf(v) for v in p]).reshape(x.shape)


def _split_rhat(x: np.ndarray) -> float:
    n = x.shape[1]
    within = np.mean(np.var(x, axis=1, ddof=1))
    between = n * np.var(np.mean(x, axis=1), ddof=1)
    if within == 0:  # every half-chain constant: stuck chains, apart unless all agree
        return float("inf") if between > 0 else float("nan")
    return float(np.sqrt(((n - 1) / n * within + between / n) / within))


def _ess(x: np.ndarray) -> float:
    """ESS of (chains, draws) by Geyer's initial monotone sequence (as in Stan)."""
    m, n = x.shape
    if not np.all(np.isfinite(x)) or np.ptp(x) == 0:
        return float("nan")
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n].real / n
    within = np.mean(acov[:, 0]) * n / (n - 1)
    var_plus = within * (n - 1) / n + (np.var(x.mean(axis=1), ddof=1) if m > 1 else 0.0)
    rho = 1.0 - (within - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    # Geyer's initial positive sequence: sums of adjacent pairs while they are positive
    kept = np.zeros(n)
    kept[:2] = rho[:2]
    t = 1
    even, odd = rho[0], rho[1]
    while t < n - 3 and even + odd > 0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd >= 0:
            kept[t + 1], kept[t + 2] = even, odd
        t += 2
    last = t - 2
    if even > 0:  # improves the estimate for antithetic chains
        kept[last + 1] = even
    # initial monotone sequence: the pair sums may not increase
    for t in range(1, last - 1, 2):
        if kept[t + 1] + kept[t + 2] > kept[t - 1] + kept[t]:
            kept[t + 1] = kept[t + 2] = (kept[t - 1] + kept[t]) / 2
    total = m * n
    tau = -1.0 + 2.0 * np.sum(kept[: last + 1]) + kept[last + 1]
    return float(total / max(tau, 1.0 / np.log10(total)))


def rhat(x) -> float:
    """Rank-normalized split R-hat: the larger of the bulk and the folded (tail) version."""
    x = _split(_chains(x))
    if not np.all(np.isfinite(x)) or np.ptp(x) == 0:
        return float("nan")
    bulk = _split_rhat(_rank_normalize(x))
    folded = _split_rhat(_rank_normalize(np.abs(x - np.median(x))))
    return max(bulk, folded)


def ess_bulk(x) -> float:
    """Bulk ESS: of the rank-normalized split chains."""
    x = _split(_chains(x))
    if not np.all(np.isfinite(x)):
        return float("nan")
    return _ess(_rank_normalize(x))


def ess_tail(x) -> float:
    """Tail ESS: the smaller ESS of the split-chain indicators I(x <= q05) and I(x <= q95)."""
    x = _chains(x)
    q05, q95 = np.quantile(x, [0.05, 0.95])
    low, high = (_ess(_split((x <= q).astype(float))) for q in (q05, q95))
    return float(np.minimum(low, high))  # NaN when either indicator is constant


def ess_mean(x) -> float:
    """ESS of the split chains themselves: the one for the Monte Carlo error of the mean."""
    return _ess(_split(_chains(x)))


def mcse_mean(x) -> float:
    """Monte Carlo standard error of the posterior mean: sd / sqrt(ess_mean)."""
    x = _chains(x)
    return float(np.std(x, ddof=1) / np.sqrt(ess_mean(x)))
