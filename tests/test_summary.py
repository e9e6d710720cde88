"""The summary table against a golden file, and its HTML twin."""

import re
from pathlib import Path

import numpy as np
from jax.scipy import stats

import jaxmle as jm

GOLDEN = Path(__file__).parent / "golden"


def golden_fit():
    x = np.array([2.1, 3.4, 1.9, 5.6, 4.4, 3.3, 2.8, 3.9, 4.1, 3.0])
    return jm.fit(
        lambda p, d: stats.norm.logpdf(d, p["mu"], p["sigma"]),
        {"mu": 0.0, "sigma": 1.0},
        x,
        constraints={"sigma": jm.positive},
    )


def normalize(text: str) -> str:
    # the gradient norm at the optimum is round-off, which differs between platforms
    return re.sub(r"max\|grad\|: \d\.\d\de[-+]\d\d", "max|grad|: #.##e-##", text)


def test_summary_matches_golden_file():
    text = normalize(golden_fit().summary())
    path = GOLDEN / "summary_gaussian.txt"
    assert text == path.read_text().rstrip("\n")


def test_summary_numbers_are_the_closed_form():
    res = golden_fit()
    x = np.array([2.1, 3.4, 1.9, 5.6, 4.4, 3.3, 2.8, 3.9, 4.1, 3.0])
    text = res.summary()
    assert f"{x.mean():.6g}" in text and f"{x.std() / np.sqrt(10):.6g}" in text
    html = res._repr_html_()
    assert "<table>" in html and "sigma" in html and f"{x.mean():.6g}" in html


def test_normal_quantile_matches_scipy():
    import scipy.stats as ss

    from jaxmle.results import normal_quantile

    for p in [1e-6, 0.025, 0.3, 0.5, 0.9, 0.975, 0.999999]:
        np.testing.assert_allclose(normal_quantile(p), ss.norm.ppf(p), rtol=1e-12, atol=1e-14)
