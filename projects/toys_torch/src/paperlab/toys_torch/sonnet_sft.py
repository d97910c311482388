"""Task 7: pre-train a Llama-architecture LM on the plays, fine-tune it on the sonnets, measure the poems.

Stages (each skipped when its output exists, so ``--resume`` continues where a run stopped):

1. ``tokenizer/``: a byte-level BPE trained on the plays (the pre-training corpus, as for a real LLM);
2. ``pretrain/`` -> ``base/``: ``LlamaForCausalLM`` (GQA, RoPE, SwiGLU, RMSNorm) on the speeches;
3. ``sft_<method>/`` -> ``sft_<method>/model``: full fine-tuning or LoRA (peft) of rank r on the
   training sonnets (every 11th sonnet is held out);
4. ``eval.json`` + ``samples.md``: held-out perplexity (sonnets, and the plays for forgetting), a
   sonnet-vs-play classifier on generations, novelty against the training sonnets, metre and rhyme,
   all next to the same numbers for real held-out sonnets and play excerpts.

The real path (``sonnet_sft.real_model=<Llama id or dir>``) skips 1-2 and fine-tunes that model with
LoRA (``load_in_4bit=true`` on a GPU). ``python -m paperlab.toys_torch.sonnet_sft [key=value ...]``
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from paperlab.shared.checkpoint import LAST, load_checkpoint
from paperlab.shared.cli import run_command
from paperlab.shared.seeding import seed_everything
from paperlab.toys_torch import textstats
from paperlab.toys_torch.common import parse_task_config, run_key, stage_resume, start_run, write_json, write_summary
from paperlab.toys_torch.data import load_plays, load_sonnets
from paperlab.toys_torch.lm import (
    build_llama,
    encode_docs,
    load_saved,
    perplexity,
    set_threads,
    train_lm,
    train_tokenizer,
)


def lora_rank(method: str) -> int:
    return int(method[len("lora") :])


def load_real_model(name: str, load_in_4bit: bool):
    """The real path: a Llama checkpoint by HF id or directory (4-bit NF4 on a GPU); one clear error offline."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {}
    if load_in_4bit:
        if not torch.cuda.is_available():
            raise ValueError("sonnet_sft.load_in_4bit=true needs a CUDA GPU (bitsandbytes NF4); set it to false")
        from transformers import BitsAndBytesConfig

        kwargs = {
            "quantization_config": BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
            ),
            "device_map": "auto",
        }
    try:
        tok = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except OSError as e:
        raise FileNotFoundError(
            f"cannot load the Llama checkpoint {name!r}: give a local directory with its weights, or accept its "
            f"licence on huggingface.co and run `huggingface-cli download {name}` on a machine with access"
        ) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def add_lora(model, rank: int, sc):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank,
        lora_alpha=sc.lora_alpha_over_r * rank,
        lora_dropout=sc.lora_dropout,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


@torch.no_grad()
def generate(model, tok, prompts: list[str], n: int, sc, seed: int) -> list[str]:
    """``n`` samples (prompt i % len(prompts)), temperature + top-k, one seed for every model compared."""
    model.eval()
    tok.padding_side = "left"
    texts = [prompts[i % len(prompts)] for i in range(n)]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(next(model.parameters()).device)
    torch.manual_seed(seed)
    out = model.generate(
        **enc,
        do_sample=True,
        temperature=sc.temperature,
        top_k=sc.top_k,
        max_new_tokens=sc.max_new_tokens,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return [t.strip() for t in tok.batch_decode(out, skip_special_tokens=True)]


def trainable_from_checkpoint(stage_dir: Path, merged_model) -> int:
    """Trainable parameters of a finished stage: its LoRA matrices, or every weight (full fine-tuning)."""
    state = load_checkpoint(stage_dir / LAST, required=("model",), kind="toys_torch fine-tuning")
    lora = sum(v.numel() for k, v in state["model"].items() if "lora_" in k)
    return lora or sum(p.numel() for p in merged_model.parameters())


def poem_stats(texts, index, clf, prompts: list[str] | None = None) -> dict:
    """Metre, rhyme and P(sonnet) of the whole texts; novelty of what was generated (prompt removed)."""
    new = [
        t[len(p) :] if p and t.startswith(p) else t for t, p in zip(texts, prompts or [""] * len(texts), strict=True)
    ]
    return {
        **textstats.metre_rhyme(texts),
        **textstats.novelty(new, index),
        "sonnet_prob": textstats.sonnet_score(clf, texts),
    }


def _main(argv=None):
    cfg, resume = parse_task_config("sonnet_sft", argv, __doc__)
    sc, shape = cfg.sonnet_sft, cfg.sonnet_sft.lm
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    t0 = time.time()
    stages = ["pretrain"] + [f"sft_{m}" for m in sc.methods]
    run_dir = start_run(cfg, resume, stages)
    saved_cfg = run_key(cfg)
    plays = load_plays(sc.plays_path)
    train_sonnets, held_sonnets = load_sonnets(sc.sonnets_path, sc.n_heldout)
    n_val_plays = int(len(plays) * shape.val_frac)
    train_plays, val_plays = plays[:-n_val_plays], plays[-n_val_plays:]
    timings = {}

    # 1-2: tokenizer and base model
    if sc.real_model:
        base, tok = load_real_model(sc.real_model, sc.load_in_4bit)
        methods = [m for m in sc.methods if m != "full"]
        base_dir = None
    else:
        methods = list(sc.methods)
        base_dir = run_dir / "base"
        if not (base_dir / "config.json").is_file():
            tok_dir = run_dir / "tokenizer"
            if (tok_dir / "tokenizer.json").is_file():
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(tok_dir)
            else:
                tok = train_tokenizer(train_plays, shape.vocab_size)
                tok.save_pretrained(tok_dir)
            torch.manual_seed(cfg.seed)
            base = build_llama(shape, tok)
            t = time.time()
            info = train_lm(
                base,
                encode_docs(tok, train_plays),
                encode_docs(tok, val_plays),
                shape,
                run_dir / "pretrain",
                cfg.seed,
                stage_resume(run_dir / "pretrain", resume),
                saved_config=saved_cfg,
            )
            timings["pretrain_s"] = round(time.time() - t, 1)
            if not info["finished"]:
                return
            base.save_pretrained(base_dir)
            tok.save_pretrained(base_dir)
        base, tok = load_saved(base_dir, "the base model")
    play_val_ids = encode_docs(tok, val_plays)
    sonnet_train_ids, sonnet_held_ids = encode_docs(tok, train_sonnets), encode_docs(tok, held_sonnets)

    # 3: fine-tuning, one model per method
    models, trainable = {"base": base}, {}
    for method in methods:
        stage = run_dir / f"sft_{method}"
        if base_dir is not None and (stage / "model" / "config.json").is_file():
            models[method] = load_saved(stage / "model", method)[0]
            trainable[method] = trainable_from_checkpoint(stage, models[method])
            continue
        torch.manual_seed(cfg.seed)
        model = load_saved(base_dir, "the base model")[0] if base_dir is not None else base
        if method == "full":
            params, lr = None, sc.full_lr
        else:
            model = add_lora(model, lora_rank(method), sc)
            params, lr = [p for p in model.parameters() if p.requires_grad], sc.lora_lr
        n_trainable = sum(p.numel() for p in (params or model.parameters()))
        t = time.time()
        info = train_lm(
            model,
            sonnet_train_ids,
            sonnet_held_ids,
            shape,
            stage,
            cfg.seed,
            stage_resume(stage, resume),
            steps=sc.sft_steps,
            lr=lr,
            batch=sc.sft_batch,
            params=params,
            saved_config=saved_cfg,
        )
        timings[f"sft_{method}_s"] = round(time.time() - t, 1)
        trainable[method] = n_trainable
        if not info["finished"]:
            return
        if method != "full":
            model = model.merge_and_unload()
        if base_dir is not None:
            model.save_pretrained(stage / "model")
            tok.save_pretrained(stage / "model")
        models[method] = model.eval()

    # 4: evaluation
    play_chunks = textstats.play_excerpts(train_plays)
    rng = np.random.default_rng(cfg.seed)
    clf_plays = [play_chunks[i] for i in rng.permutation(len(play_chunks))[:2000]]
    clf = textstats.fit_style_classifier(textstats.chunks(train_sonnets), clf_plays, cfg.seed)
    held_play_chunks = textstats.play_excerpts(val_plays)
    held_quatrains = textstats.chunks(held_sonnets)
    x_test = held_quatrains + held_play_chunks[: 4 * len(held_quatrains)]
    y_test = np.r_[np.ones(len(held_quatrains)), np.zeros(len(x_test) - len(held_quatrains))]
    clf_acc = float((clf.predict(x_test) == y_test).mean())
    index = textstats.NgramIndex(train_sonnets)
    play_poems = ["\n".join(held_play_chunks[i : i + 4]) for i in range(0, 4 * len(held_sonnets), 4)]
    rows = {
        "held-out sonnets (real)": poem_stats(held_sonnets, index, clf),
        "play excerpts (real, 14 lines)": poem_stats(play_poems, index, clf),
    }
    samples = {}
    for name, model in models.items():
        t = time.time()
        texts = generate(model, tok, sc.prompts, sc.n_samples, sc, cfg.seed)
        samples[name] = texts
        rows[name] = {
            "ppl_heldout_sonnets": perplexity(model, sonnet_held_ids, shape.context),
            "ppl_val_plays": perplexity(model, play_val_ids, shape.context),
            **poem_stats(texts, index, clf, [sc.prompts[i % len(sc.prompts)] for i in range(len(texts))]),
            "generate_s": round(time.time() - t, 1),
        }
    write_json(
        {
            "rows": rows,
            "classifier_test_accuracy": clf_acc,
            "classifier_test_n": len(x_test),
            "n_train_sonnets": len(train_sonnets),
            "n_heldout_sonnets": len(held_sonnets),
            "samples": {name: texts[: len(sc.prompts)] for name, texts in samples.items()},
            "prompts": list(sc.prompts),
            "timings": timings,
            "trainable_params": trainable,
        },
        run_dir / "eval.json",
    )
    lines = ["# Samples: the same prompts and seeds for every model\n"]
    for i, prompt in enumerate(sc.prompts):
        lines.append(f'## Prompt {i + 1}: "{prompt}"\n')
        for name, texts in samples.items():
            lines.append(f"### {name}\n\n```\n{texts[i]}\n```\n")
    (run_dir / "samples.md").write_text("\n".join(lines))
    write_summary(run_dir, cfg, t0, methods=methods, **timings)
    print(f"sonnet_sft: wrote {run_dir}/eval.json and samples.md")


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
