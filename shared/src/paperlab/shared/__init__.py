"""paperlab.shared: the few utilities every paperlab project uses (logging, seeding, rendering).

- :mod:`paperlab.shared.config`: typed dataclass configs from a YAML preset (or a checkpoint's dict)
  plus ``key=value`` overrides; ``--resume`` and other flags anywhere on the command line.
- :mod:`paperlab.shared.runlog`: a run directory with TensorBoard events, ``metrics.jsonl`` and progress.
- :mod:`paperlab.shared.checkpoint`: atomic saves, RNG state, resume checks, a guarded run directory.
- :mod:`paperlab.shared.cli`: one-line errors, exit codes, Ctrl-C/SIGTERM and NaN behaviour of commands.
- :mod:`paperlab.shared.report`: README result blocks and the top-level index's headline cells.
- :mod:`paperlab.shared.seeding`: seeds python, numpy and torch in one call; jax keys; gymnasium envs.
- :mod:`paperlab.shared.gif`, :mod:`paperlab.shared.images`: animated GIFs and PNG image grids.
- :mod:`paperlab.shared.idx`: IDX files (the MNIST format), read and written.

Nothing project-specific lives here.
"""

__all__ = ["checkpoint", "cli", "config", "gif", "idx", "images", "report", "runlog", "seeding"]
