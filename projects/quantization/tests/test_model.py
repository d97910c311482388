"""End to end on a tiny corpus: pre-training beats the unigram model, resume is exact, the int8 model agrees
with fp32, and bad inputs stop with one clear line."""

from __future__ import annotations

import json

import pytest
import torch

from paperlab.quantization import quantize as quantize_mod
from paperlab.quantization import train as train_mod
from paperlab.quantization.config import Config
from paperlab.quantization.data import encode, load_text, split_text, windows
from paperlab.quantization.evaluate import perplexity, top1_agreement
from paperlab.quantization.int8 import swap_linear
from paperlab.quantization.methods import load_method
from paperlab.quantization.model import load_llama, load_tokenizer
from paperlab.shared.config import ConfigError

from .conftest import TINY, tiny_args


def test_training_beats_the_unigram_model(trained_run):
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["finished"] and summary["steps"] == TINY["total_steps"]
    assert summary["val_perplexity"] < 0.7 * summary["unigram_perplexity"]


def _val_windows(run, corpus_dir):
    tok = load_tokenizer(run / "model")
    _, val = split_text(load_text(corpus_dir), 0.1)
    return windows(encode(tok, val), 32, 4096)


@pytest.mark.parametrize("mode", ["weight-only", "vectorwise", "llm-int8"])
def test_int8_model_agrees_with_fp32(trained_run, corpus_dir, mode):
    val = _val_windows(trained_run, corpus_dir)
    model = load_llama(trained_run / "model")
    ref = perplexity(model, val, return_top1=True)
    swap_linear(model, mode=mode)
    out = perplexity(model, val, return_top1=True)
    assert top1_agreement(out["top1"], ref["top1"]) >= 0.95
    assert abs(out["perplexity"] / ref["perplexity"] - 1) < 0.02


@pytest.mark.parametrize("method", ["int8-weight-only-whole", "llm-int8-whole"])
def test_whole_model_int8_agrees_with_fp32(trained_run, corpus_dir, method):
    """Blocks, lm_head and the embedding table in int8: logits still agree, at under 0.3x the fp32 bytes."""
    from paperlab.quantization.int8 import Int8Embedding, weight_bytes

    val = _val_windows(trained_run, corpus_dir)
    fp32 = load_llama(trained_run / "model")
    ref = perplexity(fp32, val, return_top1=True)
    model = load_method(method, str(trained_run / "model"))
    assert isinstance(model.model.embed_tokens, Int8Embedding) and model.lm_head.weight_int8.dtype == torch.int8
    out = perplexity(model, val, return_top1=True)
    assert top1_agreement(out["top1"], ref["top1"]) >= 0.95
    assert abs(out["perplexity"] / ref["perplexity"] - 1) < 0.02
    blocks_only = load_method(method.removesuffix("-whole"), str(trained_run / "model"))
    assert weight_bytes(model) < weight_bytes(blocks_only) < weight_bytes(fp32)


def test_bitsandbytes_int8_agrees_with_fp32(trained_run, corpus_dir):
    val = _val_windows(trained_run, corpus_dir)
    ref = perplexity(load_llama(trained_run / "model"), val, return_top1=True)
    out = perplexity(load_method("bnb-int8", str(trained_run / "model")), val, return_top1=True)
    assert top1_agreement(out["top1"], ref["top1"]) >= 0.95


def test_bf16_autocast_training_learns_and_saves_an_fp32_model(corpus_dir, tmp_path):
    train_mod.main(tiny_args(corpus_dir, tmp_path / "bf16", autocast_bf16="true"))
    summary = json.loads((tmp_path / "bf16" / "summary.json").read_text())
    assert summary["autocast_bf16"] and summary["val_perplexity"] < summary["unigram_perplexity"]
    assert all(p.dtype == torch.float32 for p in load_llama(tmp_path / "bf16" / "model").parameters())


def test_resume_equals_an_uninterrupted_run(corpus_dir, tmp_path):
    kw = dict(total_steps=12, checkpoint_every=4, eval_every=6)
    train_mod.main(tiny_args(corpus_dir, tmp_path / "full", **kw))
    # the same run killed after step 8 (its checkpoint), then resumed
    cfg = Config(**{**TINY, **kw, "data_dir": str(corpus_dir), "run_dir": str(tmp_path / "cut")})
    original = train_mod.random_batch
    calls = {"n": 0}

    def stop_after_8(*a, **k):
        calls["n"] += 1
        if calls["n"] > 8:
            raise KeyboardInterrupt
        return original(*a, **k)

    train_mod.random_batch = stop_after_8
    try:
        with pytest.raises(KeyboardInterrupt):
            train_mod.train(cfg)
    finally:
        train_mod.random_batch = original
    with pytest.raises(SystemExit) as e:  # a fresh run over a checkpoint is refused
        train_mod.main(tiny_args(corpus_dir, tmp_path / "cut", **kw))
    assert e.value.code == 2
    train_mod.main([*tiny_args(corpus_dir, tmp_path / "cut", **kw), "--resume"])
    a = load_llama(tmp_path / "full" / "model").state_dict()
    b = load_llama(tmp_path / "cut" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(SystemExit) as e:  # a changed shape on resume is refused
        train_mod.main([*tiny_args(corpus_dir, tmp_path / "cut", **kw, hidden_size=64), "--resume"])
    assert e.value.code == 2


def test_bad_inputs_give_one_line_and_exit_2(corpus_dir, tmp_path, capsys):
    cases = [
        (train_mod.main, tiny_args(tmp_path / "nowhere", tmp_path / "r1"), "input.txt"),
        (train_mod.main, tiny_args(corpus_dir, tmp_path / "r2", warmup="x"), "unknown config key"),
        (quantize_mod.main, tiny_args(corpus_dir, tmp_path / "r3"), "model_path=DIR"),
        (quantize_mod.main, tiny_args(corpus_dir, tmp_path / "r4", threshold=0), "threshold must be > 0"),
        (quantize_mod.main, tiny_args(corpus_dir, tmp_path / "r5", methods="[int4]"), "unknown method"),
    ]
    for main, argv, msg in cases:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err


def test_a_model_that_is_not_llama_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50, n_positions=16)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a LlamaForCausalLM"):
        load_llama(tmp_path)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="threshold"):
        Config(threshold=-1)
    with pytest.raises(ValueError, match="num_kv_heads"):
        Config(num_heads=4, num_kv_heads=3)
    assert isinstance(ConfigError("x"), ValueError)


def test_injected_outliers_keep_the_function_and_the_decomposition_handles_them(trained_run, corpus_dir):
    from paperlab.quantization.outliers import feature_stats, inject_outliers

    val = _val_windows(trained_run, corpus_dir)[:8]
    model = load_llama(trained_run / "model")
    ref = model(val).logits
    inject_outliers(model, [3, 17], 30.0)
    torch.testing.assert_close(model(val).logits, ref, rtol=1e-4, atol=1e-4)  # the same function
    stats = feature_stats(model, val, threshold=6.0)
    assert [d["dim"] for d in stats["systematic"]] == [3, 17]  # found by the paper's criterion
    plain, mixed = load_llama(trained_run / "model"), load_llama(trained_run / "model")
    for m, mode in ((plain, "vectorwise"), (mixed, "llm-int8")):
        inject_outliers(m, [3, 17], 30.0)
        swap_linear(m, mode=mode, threshold=6.0)
    err_plain = (plain(val).logits - ref).abs().mean()
    err_mixed = (mixed(val).logits - ref).abs().mean()
    assert err_mixed < err_plain / 2


def test_quantize_table_and_report_end_to_end(trained_run, corpus_dir, tmp_path):
    """`make quantize` on the tiny model (two methods, each in its own process), then the report from its files."""
    from paperlab.quantization import report

    args = tiny_args(
        corpus_dir,
        trained_run,
        methods="[llm-int8]",
        repeats=1,
        decode_tokens=4,
        sample_tokens=4,
        prefill_len=16,
        ppl_tokens=512,
        ppl_window=32,
        prompts="[ROMEO]",
    )
    quantize_mod.main(args)
    q = json.loads((trained_run / "quantize" / "quantize.json").read_text())
    assert set(q["methods"]) == {"fp32", "llm-int8"} and not q["failed"]
    fp, int8 = q["methods"]["fp32"], q["methods"]["llm-int8"]
    assert int8["top1_agreement"] >= 0.95 and fp["top1_agreement"] == 1.0
    assert int8["weight_bytes"] < fp["weight_bytes"] and int8["peak_rss_mb"] > 0
    assert any("_int_mm" in p["op"] for p in int8["profile"])  # the int8 kernel really ran
    quantize_mod.main([*args, "methods=[llm-int8-whole]", "keep_previous=true"])  # one more row, same table
    q2 = json.loads((trained_run / "quantize" / "quantize.json").read_text())
    assert set(q2["methods"]) == {"fp32", "llm-int8", "llm-int8-whole"} and set(q2["added_later"]) == {"llm-int8-whole"}
    assert q2["methods"]["llm-int8"] == int8 and q2["methods"]["llm-int8-whole"]["top1_agreement"] >= 0.95
    assert q2["methods"]["llm-int8-whole"]["weight_bytes"] < int8["weight_bytes"]
    readme = tmp_path / "README.md"
    readme.write_text(
        "".join(f"<!-- report:{b} -->\n<!-- /report:{b} -->\n" for b in ("train", "quantize", "profile", "samples"))
    )
    report.main(["--collect", str(trained_run), "--results", str(tmp_path / "results"), "--readme", str(readme)])
    text = readme.read_text()
    assert "**llm-int8** (here)" in text and "**llm-int8-whole** (here)" in text and "were added by a later run" in text
    assert "unigram" in text and (tmp_path / "results" / "train_loss.png").is_file()


def test_step_bench_times_both_precisions_of_a_preset(tmp_path, capsys):
    from paperlab.quantization import step_bench

    preset = tmp_path / "tiny.yaml"
    preset.write_text("".join(f"{k}: {v}\n" for k, v in TINY.items()))
    step_bench.main(["--configs", str(preset), "--repeats", "2", "--out", str(tmp_path / "st.json")])
    st = json.loads((tmp_path / "st.json").read_text())
    assert [r["autocast_bf16"] for r in st["rows"]] == [False, True]
    assert all(len(r["step_s"]) == 2 and r["median_s"] > 0 for r in st["rows"])
    assert st["rows"][0]["n_params"] > 0 and st["rows"][0]["tokens_per_step"] == TINY["batch_size"] * TINY["context"]
