"""LLM.int8() (Dettmers et al. 2022) written here, on a Llama model trained here, next to bitsandbytes, torchao
and torch.ao; a tiled online-softmax attention (FlashAttention's recurrence) in plain torch."""
