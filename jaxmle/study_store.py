"""What a simulation study keeps in its checkpoint directory besides the fits: its design,
from which ``jm.load_study`` rebuilds the ``StudyResult`` without the model.

The design is stored as the attachment ``study.npz`` (``Checkpoint.attach``: written
atomically with the run's identity and a digest, the same from every shard): plain arrays
(the truth, the fixed values, the Cramér–Rao variances) and one JSON text (``meta``) with
the sizes, the labels and the parameters' structure. Nothing is pickled; a structure that
JSON cannot hold (a container other than dicts with string keys, lists and tuples, or a
constraint of one's own) raises ValueError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from . import constraints as C
from .parameters import Leaf, ParameterSpace

NAME = "study"


@dataclass(frozen=True)
class StudyDesign:
    """What a ``StudyResult`` holds besides the fits: the truth (a host pytree), ``n``,
    ``reps``, the text ``label``, the parameters (``space`` and the values of the fixed
    leaves), the fits' ``method`` and ``nobs``, ``crlb_var``, the Cramér–Rao variances
    from the model's Fisher information (None: from the fits' observed information), and
    the fits' ``cov_type`` with its number of ``clusters`` (cov_type="cluster")."""

    truth: Any
    n: int
    reps: int
    label: str
    space: ParameterSpace
    fixed_leaves: list
    method: str
    nobs: int | None
    crlb_var: np.ndarray | None
    cov_type: str = "observed"
    clusters: int | None = None


def design_arrays(design: StudyDesign) -> dict:
    """``design`` as plain arrays (the attachment's contents); ValueError naming what JSON
    cannot hold."""
    meta = {
        "n": design.n,
        "reps": design.reps,
        "label": design.label,
        "method": design.method,
        "nobs": design.nobs,
        "cov_type": design.cov_type,
        "clusters": design.clusters,
        "truth": _structure(jax.tree_util.tree_structure(design.truth), "truth"),
        "params": _structure(design.space.treedef, "the parameters"),
        "leaves": [_leaf(leaf) for leaf in design.space.leaves],
    }
    arrays = {"meta": np.asarray(json.dumps(meta))}
    arrays |= {f"truth_{j}": np.asarray(v) for j, v in enumerate(jax.tree_util.tree_leaves(design.truth))}
    arrays |= {f"fixed_{j}": np.asarray(v) for j, v in enumerate(design.fixed_leaves)}
    if design.crlb_var is not None:
        arrays["crlb_var"] = np.asarray(design.crlb_var)
    return arrays


def design_of(arrays: dict) -> StudyDesign:
    """The ``StudyDesign`` stored as ``arrays`` by ``design_arrays``."""
    meta = json.loads(str(arrays["meta"]))
    truth_def = jax.tree_util.tree_structure(_template(meta["truth"]))
    truth = [arrays[f"truth_{j}"] for j in range(truth_def.num_leaves)]
    leaves = tuple(_leaf_of(leaf) for leaf in meta["leaves"])
    space = ParameterSpace(jax.tree_util.tree_structure(_template(meta["params"])), leaves)
    return StudyDesign(
        truth=jax.tree_util.tree_unflatten(truth_def, truth),
        n=meta["n"],
        reps=meta["reps"],
        label=meta["label"],
        space=space,
        fixed_leaves=[arrays[f"fixed_{j}"] for j in range(sum(leaf.fixed for leaf in leaves))],
        method=meta["method"],
        nobs=meta["nobs"],
        crlb_var=arrays.get("crlb_var"),
        cov_type=meta["cov_type"],
        clusters=meta["clusters"],
    )


def _structure(treedef, what: str):
    """A pytree's structure as JSON: null for a leaf, ``{"dict": {key: ...}}``,
    ``{"list": [...]}``, ``{"tuple": [...]}`` or ``{"none": null}``."""
    if treedef.node_data() is None:
        return None
    kind, keys = treedef.node_data()
    children = [_structure(child, what) for child in treedef.children()]
    if kind is dict and all(isinstance(key, str) for key in keys):
        return {"dict": dict(zip(keys, children, strict=True))}
    if kind in (list, tuple):
        return {kind.__name__: children}
    if kind is type(None):
        return {"none": None}
    raise ValueError(
        f"checkpoint: {what} cannot be stored for jm.load_study: a study's checkpoint holds dicts with string keys, "
        f"lists and tuples, not {kind.__name__}"
    )


def _template(structure):
    """A pytree of the stored ``structure`` (leaves 0)."""
    if structure is None:
        return 0
    ((kind, value),) = structure.items()
    if kind == "dict":
        return {key: _template(v) for key, v in value.items()}
    if kind in ("list", "tuple"):
        children = [_template(v) for v in value]
        return children if kind == "list" else tuple(children)
    return None


NAMED = {c.name: c for c in (C.simplex, C.ordered)}


def _leaf(leaf: Leaf) -> dict:
    c = leaf.constraint
    kind = "interval" if type(c) is C.Constraint else c.name  # an interval of any ends, or simplex / ordered
    if kind != "interval" and NAMED.get(kind) != c:
        raise ValueError(
            f"checkpoint: the constraint {c!r} of {leaf.label} cannot be stored for jm.load_study (only jaxmle's own "
            "constraints can)"
        )
    return {
        "key": leaf.key,
        "label": leaf.label,
        "shape": list(leaf.shape),
        "constraint": {"kind": kind, "name": c.name, "lower": repr(float(c.lower)), "upper": repr(float(c.upper))},
        "fixed": leaf.fixed,
        "labels": None if leaf.labels is None else list(leaf.labels),
        "held": [[int(i), repr(float(v))] for i, v in leaf.held],
    }


def _leaf_of(stored: dict) -> Leaf:
    c = stored["constraint"]
    constraint = NAMED.get(c["kind"]) or C.Constraint(c["name"], float(c["lower"]), float(c["upper"]))
    return Leaf(
        key=stored["key"],
        label=stored["label"],
        shape=tuple(stored["shape"]),
        constraint=constraint,
        fixed=stored["fixed"],
        labels=None if stored["labels"] is None else tuple(stored["labels"]),
        held=tuple((i, float(v)) for i, v in stored["held"]),
    )
