"""The Moré–Garbow–Hillstrom least-squares problems: trust-region against line-search Newton.

    python benchmarks/mgh.py [--max-iter N] [--markdown]

Each problem (tests/mgh_problems.py) is fitted with ``jm.fit`` from its published
starting point as a unit-variance Gaussian likelihood, at the default settings (or with
``--max-iter``), once with the trust-region Newton strategy and once with the
line-search Newton. The table gives f = Σr² at the returned point, the published f*,
the iterations and status of each, whether f matches a published minimum value, and
MINPACK's counts for the problems MINPACK's test set shares.

MINPACK's counts: the function and Jacobian evaluations (nfev/njev) of ``lmder1`` from
the standard starting point (factor 1), as printed by MINPACK-1's test driver for lmder
(``lmddrv``, Argonne 1980; reference output ``examples/ref/lmddrv.fortran.ref`` in the
cminpack distribution). lmder is Levenberg–Marquardt on the Gauss–Newton model with
tolerance √eps; its Jacobian evaluations are comparable to our iterations (one
derivative evaluation each), not its function evaluations. MINPACK's test set lacks
problems 3, 4, 5, 9, 14 and 18 (no count is given for those). Problem 13 (Powell
singular) stopped at MINPACK's evaluation limit (info 5).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

import jaxmle as jm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mgh_problems import PROBLEMS  # noqa: E402

#: (MGH number, n) -> (nfev, njev) of MINPACK's lmder1 from the standard start (see above)
MINPACK_LMDER = {
    (1, 2): (21, 16),
    (2, 2): (14, 8),
    (6, 2): (21, 12),
    (7, 3): (11, 8),
    (8, 3): (6, 5),
    (10, 3): (126, 116),
    (12, 3): (7, 6),
    (13, 4): (500, 499),
    (15, 4): (18, 16),
    (16, 4): (254, 236),
    (17, 5): (18, 15),
    (19, 11): (16, 12),
    (20, 6): (8, 7),
    (20, 9): (8, 7),
}


def fit(problem, max_iter, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jm.FitWarning)
        res = jm.fit(problem.loglik, {"x": np.array(problem.x0, float)}, max_iter=max_iter, method=method)
    return -2.0 * res.loglik + 0.0, res.n_iter, res.status.name  # + 0.0: no -0


def rows(max_iter):
    for p in PROBLEMS:
        tr = fit(p, max_iter, "newton")
        ls = fit(p, max_iter, "line-search")
        minpack = MINPACK_LMDER.get((p.number, p.n))
        yield p, tr, ls, minpack


def mark(problem, f) -> str:
    return "" if problem.reached(f) is not None else " (x)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=None, help="iteration cap (default: jm.fit's)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    head = [
        "#",
        "problem",
        "n",
        "m",
        "f*",
        "TR f",
        "TR it",
        "TR status",
        "LS f",
        "LS it",
        "LS status",
        "MINPACK nfev/njev",
    ]
    lines = []
    for p, tr, ls, minpack in rows(args.max_iter):
        lines.append(
            [
                str(p.number),
                p.name,
                str(p.n),
                str(p.m),
                "/".join(f"{v:.6g}" for v in (p.f_star, *p.other_minima)),
                f"{tr[0]:.6g}{mark(p, tr[0])}",
                str(tr[1]),
                tr[2],
                f"{ls[0]:.6g}{mark(p, ls[0])}",
                str(ls[1]),
                ls[2],
                f"{minpack[0]}/{minpack[1]}" if minpack else "-",
            ]
        )
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
        for line in [head, *lines]:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths)))
    print("(x): f matches no published minimum value (1e-6 relative, or the printed digits; 1e-10 where f* = 0)")


if __name__ == "__main__":
    main()
