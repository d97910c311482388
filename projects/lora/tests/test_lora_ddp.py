"""The multi-process path: torchrun --nproc_per_node 2 (gloo) against one process with the same global batch."""

from __future__ import annotations

import pytest

from paperlab.lora.ddp_check import ddp_check


@pytest.mark.slow
def test_two_processes_give_identical_adapters_that_match_one_process(tmp_path):
    result = ddp_check(tmp_path / "ddp", steps=6)
    assert result["processes"] == 2
    assert result["ranks_bit_identical"]
    assert result["max_abs_adapter_value"] > 1e-4  # the adapters moved away from B = 0
    assert result["max_abs_diff_2proc_vs_1proc"] < 1e-5
