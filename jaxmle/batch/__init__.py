"""fit_batch: many fits of one model at once, with vmap, chunks, devices, progress and checkpoints.

The replicates are processed in chunks of a fixed size (the last one padded), so one
compiled program serves the whole run and memory stays bounded by the chunk. Each chunk is
split over every device JAX sees with ``shard_map``: every device runs its own solver loop on
its share, so a slow fit holds back only the lanes beside it; on the CPU, groups of lanes run
from several threads at once, which overlaps their programs. With Newton's method (whose only
state between iterations is the point itself) a first pass stops each lane at the iterations
most fits of a pilot group needed, and a lane that has not finished is restarted from its last
point in a second, smaller pass, which ends exactly where one long pass would, so a few hard
fits (separation, a boundary estimate) do not hold the whole chunk; L-BFGS and optax methods
carry curvature or moment estimates, so they run in one pass. The observed inference runs in
the same compiled program, in the batch's precision (the function a single fit runs in
NumPy, here over ``jax.numpy``). A replicate whose data hold a NaN, or (with a built-in
model) fail the model's ``check_data``, is marked INVALID_DATA and replaced by a valid
replicate before the data reach the device, so nothing else can be touched by it.

The package's modules, one job each: ``api`` (``fit_batch``: arguments and the inputs of each
chunk), ``runner`` (chunks, progress and checkpoints), ``two_pass`` (the two-pass solve),
``backend`` (lanes per program, threads and devices: the one place that knows the
platform), ``outputs`` (per-replicate results) and ``replicates`` (the replicates' inputs).
"""

from .api import fit_batch

__all__ = ["fit_batch"]
