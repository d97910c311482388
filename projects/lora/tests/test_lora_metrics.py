"""The Fréchet distance against closed forms, and the report tables from hand-made result files."""

from __future__ import annotations

import numpy as np
import pytest

from paperlab.lora.classifier import frechet_distance
from paperlab.lora.report import headline, merge_table, sweep_table


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200_000, 3))
    a = z * np.array([1.0, 2.0, 0.5])
    b = z[::-1] * np.array([3.0, 1.0, 0.5]) + np.array([1.0, 0.0, -2.0])
    # ||mu_a - mu_b||^2 + sum (s_a - s_b)^2 for diagonal covariances with std s
    expected = 1.0 + 4.0 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0.0
    assert frechet_distance(a, b) == pytest.approx(expected, rel=2e-2)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def _row(name, mode, rank, seed, fd):
    return {
        "name": name,
        "mode": mode,
        "rank": rank,
        "modules": "attn" if mode == "lora" else None,
        "seed": seed,
        "fd_target": fd,
        "fd_source": 2 * fd,
        "eps_loss_target_test": 0.1,
        "eps_loss_source_test": 0.05,
        "trainable_params": 100 if mode == "lora" else 1000,
        "total_params": 1000,
        "saved_bytes": 2048,
        "step_time_s": 0.1,
        "train_state_mb": 0.01,
        "peak_rss_mb": 600,
        "n": 1000,
        "ddim_steps": 10,
        "sample_ms_per_image": 4.0,
        "merged_sample_ms_per_image": 3.0,
        "merged_vs_unmerged_max_abs": 1e-6,
    }


def test_report_tables_group_seeds_and_order_rows():
    rows = [
        _row("full-seed1", "full", 4, 1, 30.0),
        _row("lora-r4-attn-seed2", "lora", 4, 2, 50.0),
        _row("base", "base", 4, 1, 900.0),
        _row("lora-r4-attn-seed1", "lora", 4, 1, 40.0),
        _row("lora-r1-attn-seed1", "lora", 1, 1, 80.0),
    ]
    table = sweep_table(rows).splitlines()
    assert [line.split("|")[1].strip() for line in table[2:]] == ["base", "LoRA", "LoRA", "full fine-tuning"]
    assert "| 4 | 2 | 45.0 (40.0 / 50.0) |" in table[4]
    assert all(line.count("|") == table[0].count("|") for line in table)  # rank 4: two seeds, the mean and each
    assert "lora-r4-attn-seed1" in merge_table(rows)
    assert headline(rows) == "results pending"  # no attention+conv+time row yet
    wide = {**_row("lora-r4-attn+conv+time-seed1", "lora", 4, 1, 20.0), "modules": "attn+conv+time"}
    line = headline([*rows, {**wide, "eps_loss_target_test": 0.04}])
    assert line.startswith("MNIST base -> 320 Olivetti faces") and "r4 on attention+conv+time 0.040" in line


def test_publish_copies_the_small_files_and_draws_one_grid_row_per_model(tmp_path):
    import json

    import torch

    from paperlab.lora.publish import publish

    for name in ("lora-r16-attn-seed1", "base", "full-seed1", "lora-r4-attn-seed1", "unfinished"):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text("mode: x\n")
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "last.pt").write_bytes(b"big")
        if name != "unfinished":
            (run / "eval.json").write_text(json.dumps({"fd_target": 1.0}))
            torch.save({"target": torch.zeros(64, 1, 4, 4), "source": torch.ones(64, 1, 4, 4)}, run / "eval_samples.pt")
    names = publish(tmp_path / "runs", tmp_path / "results", per_row=3, with_real=False)
    assert names == ["base", "lora-r4-attn-seed1", "lora-r16-attn-seed1", "full-seed1"]
    assert (tmp_path / "results" / "base" / "eval.json").is_file()
    assert (
        not (tmp_path / "results" / "base" / "checkpoints").exists()
        and not (tmp_path / "results" / "unfinished").exists()
    )
    from PIL import Image

    grid = Image.open(tmp_path / "results" / "grid-target.png")
    assert grid.size == (2 * (3 * 5 + 1), 2 * (4 * 5 + 1))  # 3 columns, 4 rows of 4px tiles, 1px pads, scale 2


def test_the_facts_block_reads_the_rows():
    from paperlab.lora.report import facts

    rows = [
        _row("full-seed1", "full", 4, 1, 30.0),
        _row("base", "base", 4, 1, 900.0),
        _row("lora-r4-attn-seed1", "lora", 4, 1, 40.0),
        _row("lora-r1-attn-seed1", "lora", 1, 1, 80.0),
    ]
    text = facts(rows, {"target_test_vs_train": 5.0, "source_train_vs_test": 1.0})
    assert "r1 80.0, r4 40.0; lowest at r4" in text and "10.00% of full fine-tuning" in text


def test_the_merge_bench_table_gives_the_ratio_and_marks_the_base():
    from paperlab.lora.report import merge_bench_table

    bench = {
        "n": 200,
        "ddim_steps": 10,
        "repeats": 3,
        "threads": 1,
        "cpu": "x",
        "load_before": [1.0, 1.0, 1.0],
        "rows": [
            {"run": "base", "mode": "base", "lora_layers": 0, "ms_per_image": 20.0},
            {
                "run": "lora-r4",
                "mode": "lora",
                "lora_layers": 8,
                "ms_per_image": 30.0,
                "merged_ms_per_image": 21.0,
                "merged_vs_unmerged_max_abs": 2e-6,
            },
        ],
    }
    table = merge_bench_table(bench)
    assert "| base (no adapter) | 0 | 20.00 | - | - | - |" in table
    assert "| lora-r4 | 8 | 30.00 | 21.00 | 0.70 | 2.0e-06 |" in table
    assert "make bench-lora" in merge_bench_table(None)
