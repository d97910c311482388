"""The LoRA layers written here: the identities the method relies on, checked numerically, and peft agreement."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from paperlab.lora.config import MODULE_SETS, Config
from paperlab.lora.lora import (
    LoRAConv2d,
    LoRAError,
    LoRALinear,
    adapter_state_dict,
    copy_to_peft,
    find_targets,
    inject_lora,
    inject_peft,
    load_adapter,
    lora_modules,
    lora_parameters,
    merge_lora,
    read_adapter,
    remove_lora,
    save_adapter,
    unmerge_lora,
)
from paperlab.lora.model import build_unet


def tiny_cfg(**kw) -> Config:
    base = dict(
        image_size=8, block_out_channels=[8, 16], attn_levels=[False, True], norm_num_groups=4, attention_head_dim=8
    )
    return Config(**{**base, **kw})


def tiny_unet(seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build_unet(tiny_cfg(**kw), num_class_embeds=10).eval()


def unet_inputs(n: int = 3, size: int = 8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, size, size, generator=g), torch.tensor([5, 500, 999][:n]), torch.tensor([0, 3, 9][:n])


def randomise_b(model: nn.Module, seed: int = 2) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in lora_modules(model).values():
            m.lora_B.weight.normal_(0, 0.1, generator=g)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_initial_lora_leaves_the_layer_unchanged_and_merging_is_exact(kind):
    torch.manual_seed(0)
    if kind == "linear":
        base, x = nn.Linear(12, 7), torch.randn(5, 12)
        layer = LoRALinear(copy.deepcopy(base), rank=3, alpha=6.0)
    else:
        base, x = nn.Conv2d(4, 6, 3, stride=2, padding=1), torch.randn(2, 4, 9, 9)
        layer = LoRAConv2d(copy.deepcopy(base), rank=3, alpha=6.0)
    assert torch.equal(layer(x), base(x))  # B = 0: the adapted layer is the base layer at step 0
    assert torch.count_nonzero(layer.lora_A.weight) > 0 and layer.scale == 2.0
    with torch.no_grad():
        layer.lora_B.weight.normal_(0, 0.5)
    unmerged = layer(x)
    assert not torch.allclose(unmerged, base(x))
    # the update has rank <= r
    assert torch.linalg.matrix_rank(layer.delta_weight().flatten(1)) <= 3
    layer.merge()
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=0)
    torch.testing.assert_close(layer.base(x), unmerged, atol=1e-5, rtol=0)  # merged weights alone
    layer.unmerge()
    torch.testing.assert_close(layer.base.weight, base.weight, atol=1e-6, rtol=0)


def test_lora_forward_is_the_papers_formula():
    torch.manual_seed(0)
    base = nn.Linear(5, 4)
    layer = LoRALinear(copy.deepcopy(base), rank=2, alpha=8.0)
    with torch.no_grad():
        layer.lora_B.weight.normal_()
    x = torch.randn(3, 5)
    w0, a, b = base.weight, layer.lora_A.weight, layer.lora_B.weight
    expected = x @ w0.T + base.bias + (8.0 / 2) * x @ a.T @ b.T  # h = W0 x + (alpha/r) B A x
    torch.testing.assert_close(layer(x), expected)


def test_injected_module_count_matches_the_pattern():
    unet = tiny_unet()
    expected_attn = sum(1 for n, _ in unet.named_modules() if n.endswith((".to_q", ".to_k", ".to_v", ".to_out.0")))
    names = inject_lora(unet, MODULE_SETS["attn"], rank=2, alpha=2)
    assert len(names) == expected_attn == 4 * len([n for n, _ in unet.named_modules() if n.endswith(".to_q")])
    assert len(lora_modules(unet)) == len(names)
    unet2 = tiny_unet()
    names2 = inject_lora(unet2, MODULE_SETS["attn+conv+time"], rank=2, alpha=2)
    convs = [n for n in names2 if n.endswith((".conv1", ".conv2"))]
    assert len(convs) == sum(
        1 for n, m in tiny_unet().named_modules() if isinstance(m, nn.Conv2d) and n.endswith((".conv1", ".conv2"))
    )
    assert any(isinstance(lora_modules(unet2)[n], LoRAConv2d) for n in convs)
    assert "time_embedding.linear_1" in names2
    # a regex pattern picks exactly what it names
    assert find_targets(tiny_unet(), [r"re:mid_block\.attentions\.0\.to_(q|k)"]) == [
        "mid_block.attentions.0.to_q",
        "mid_block.attentions.0.to_k",
    ]


def test_unet_with_lora_at_init_equals_the_base_and_merged_equals_unmerged():
    base = tiny_unet()
    x, t, y = unet_inputs()
    ref = base(x, t, class_labels=y).sample
    unet = copy.deepcopy(base)
    inject_lora(unet, MODULE_SETS["attn+conv+time"], rank=4, alpha=4)
    assert torch.equal(unet(x, t, class_labels=y).sample, ref)
    randomise_b(unet)
    out = unet(x, t, class_labels=y).sample
    assert (out - ref).abs().max() > 1e-3
    merge_lora(unet)
    torch.testing.assert_close(unet(x, t, class_labels=y).sample, out, atol=1e-5, rtol=0)
    unmerge_lora(unet)
    torch.testing.assert_close(unet(x, t, class_labels=y).sample, out, atol=1e-5, rtol=0)
    remove_lora(unet, merge=True)  # back to plain layers, the update folded in
    assert not lora_modules(unet)
    torch.testing.assert_close(unet(x, t, class_labels=y).sample, out, atol=1e-5, rtol=0)


def test_only_adapter_parameters_get_gradients_and_the_base_stays_bit_identical():
    unet = tiny_unet()
    frozen = {k: v.clone() for k, v in unet.state_dict().items()}
    inject_lora(unet, MODULE_SETS["attn+conv+time"], rank=2, alpha=2)
    trainable = [p for p in unet.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in lora_parameters(unet)}
    opt = torch.optim.AdamW(trainable, lr=1e-2)
    x, t, y = unet_inputs()
    unet.train()
    for _ in range(3):
        loss = (unet(x, t, class_labels=y).sample - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for n, p in unet.named_parameters():
        assert (p.grad is not None) == ("lora_" in n), n
    after = {k.replace(".base.", "."): v for k, v in unet.state_dict().items() if "lora_" not in k}
    assert after.keys() == frozen.keys()
    assert all(torch.equal(after[k], frozen[k]) for k in frozen)
    assert any(torch.count_nonzero(m.lora_B.weight) for m in lora_modules(unet).values())


@pytest.mark.parametrize("modules", ["attn", "attn+conv+time"])
def test_hand_written_lora_equals_peft_on_the_same_weights(modules):
    base = tiny_unet()
    x, t, y = unet_inputs()
    ours = copy.deepcopy(base)
    inject_lora(ours, MODULE_SETS[modules], rank=3, alpha=6)
    randomise_b(ours)
    theirs = inject_peft(copy.deepcopy(base), MODULE_SETS[modules], rank=3, alpha=6)
    assert copy_to_peft(ours, theirs) == len(lora_modules(ours))
    a, b = ours(x, t, class_labels=y).sample, theirs(x, t, class_labels=y).sample
    assert (a - base(x, t, class_labels=y).sample).abs().max() > 1e-3  # the adapter does something
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    n_ours = sum(p.numel() for p in lora_parameters(ours))
    assert n_ours == sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    # peft's merge agrees with ours
    merge_lora(ours)
    for m in theirs.modules():
        if hasattr(m, "merge") and hasattr(m, "lora_A"):
            m.merge()
    torch.testing.assert_close(
        ours(x, t, class_labels=y).sample, theirs(x, t, class_labels=y).sample, atol=1e-5, rtol=0
    )


def test_adapter_round_trip_holds_only_adapter_tensors(tmp_path):
    base = tiny_unet()
    x, t, y = unet_inputs()
    unet = copy.deepcopy(base)
    inject_lora(unet, MODULE_SETS["attn"], rank=2, alpha=4)
    randomise_b(unet)
    size = save_adapter(unet, tmp_path / "a.safetensors")
    tensors, meta = read_adapter(tmp_path / "a.safetensors")
    assert set(tensors) == set(adapter_state_dict(unet)) and all("lora_" in k for k in tensors)
    assert meta["rank"] == "2" and float(meta["alpha"]) == 4.0
    assert size < sum(p.numel() for p in base.parameters()) * 4 / 20  # a small fraction of the model
    fresh = copy.deepcopy(base)
    load_adapter(fresh, tmp_path / "a.safetensors")
    assert torch.equal(fresh(x, t, class_labels=y).sample, unet(x, t, class_labels=y).sample)


def test_bad_ranks_and_patterns_are_refused_without_touching_the_model():
    unet = tiny_unet()
    with pytest.raises(LoRAError, match="positive integer"):
        inject_lora(unet, MODULE_SETS["attn"], rank=0, alpha=1)
    with pytest.raises(LoRAError, match="exceeds the width"):
        inject_lora(unet, MODULE_SETS["attn"], rank=17, alpha=1)  # attention is 16 wide
    with pytest.raises(LoRAError, match="match no Linear/Conv2d"):
        inject_lora(unet, ["to_qq", "attention.nothing"], rank=2, alpha=1)
    assert not lora_modules(unet) and all(p.requires_grad for p in unet.parameters())
    with pytest.raises(LoRAError, match="exceeds the width"):
        LoRAConv2d(nn.Conv2d(2, 3, 1), rank=3, alpha=1)  # a 1x1 conv 2->3 has rank <= 2
    inject_lora(unet, MODULE_SETS["attn"], rank=16, alpha=1)  # full width is allowed
    with pytest.raises(LoRAError, match="already holds LoRA"):
        inject_lora(unet, MODULE_SETS["attn"], rank=2, alpha=1)


def test_an_adapter_on_another_base_names_what_does_not_fit(tmp_path):
    unet = tiny_unet()
    inject_lora(unet, MODULE_SETS["attn"], rank=2, alpha=2)
    save_adapter(unet, tmp_path / "a.safetensors")
    no_attn = tiny_unet(attn_levels=[False, False])  # the mid block keeps one attention block
    with pytest.raises(LoRAError, match=r"lacks 12 of its 16 modules: down_blocks\.1\.attentions\.0\.to_k"):
        load_adapter(no_attn, tmp_path / "a.safetensors")
    wider = tiny_unet(block_out_channels=[8, 24], norm_num_groups=4)
    with pytest.raises(LoRAError, match="shapes differ at down_blocks.1.attentions.0.to_k"):
        load_adapter(wider, tmp_path / "a.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(LoRAError, match="not a safetensors file"):
        load_adapter(tiny_unet(), tmp_path / "junk.safetensors")


def test_lora_works_on_a_text_conditioned_unet_the_stable_diffusion_shape():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=12,
        norm_num_groups=4,
        attention_head_dim=4,
    ).eval()
    x, t, text = torch.randn(2, 4, 8, 8), torch.tensor([10, 900]), torch.randn(2, 5, 12)
    ref = unet(x, t, encoder_hidden_states=text).sample
    names = inject_lora(unet, MODULE_SETS["attn"], rank=2, alpha=2)
    assert any("attn2.to_k" in n for n in names)  # the cross-attention projections of the text
    randomise_b(unet)
    out = unet(x, t, encoder_hidden_states=text).sample
    assert (out - ref).abs().max() > 1e-4
    merge_lora(unet)
    torch.testing.assert_close(unet(x, t, encoder_hidden_states=text).sample, out, atol=1e-5, rtol=0)
