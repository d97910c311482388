"""paperlab.shared: the few utilities every paperlab project uses.

- :mod:`paperlab.shared.config`: typed dataclass configs from a YAML preset plus ``key=value`` overrides.
- :mod:`paperlab.shared.runlog`: a run directory with TensorBoard events, ``metrics.jsonl`` and a progress bar.
- :mod:`paperlab.shared.seeding`: seeds python, numpy and torch in one call; jax keys; gymnasium envs.
- :mod:`paperlab.shared.gif`: frames to an animated GIF (integer upscaling, fps, frame cap).

Nothing project-specific lives here.
"""

__all__ = ["config", "gif", "runlog", "seeding"]
