"""LoRA (Hu et al. 2021, arXiv 2106.09685) fine-tuning of a small diffusion U-Net: base model trained here,
hand-written LoRALinear/LoRAConv2d checked against peft, an Accelerate training loop, a rank sweep."""

import logging as _logging

# diffusers imports bitsandbytes and torchao, which log harmless lines about kernels this CPU build lacks
for _name in ("bitsandbytes", "torchao", "torch.utils._pytree", "diffusers.utils.import_utils", "diffusers.quantizers"):
    _logging.getLogger(_name).setLevel(_logging.ERROR)
