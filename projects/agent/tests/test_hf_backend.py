"""The local transformers backend's plumbing, with a tiny randomly initialised model (no success claimed)."""

import pytest

from paperlab.agent.agent import Agent, AgentSettings
from paperlab.agent.llm import HFModel
from paperlab.agent.tools import CalculatorTool, ToolRegistry


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = "[UNK] <eos> system user assistant Action Action Input Final Answer : { } the a 1 2 + calculator".split()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", eos_token="<eos>", pad_token="<eos>"
    )
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} <eos> {% endfor %}"
        "{% if add_generation_prompt %}assistant : {% endif %}"
    )
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=len(vocab),
        n_positions=4096,
        n_embd=16,
        n_layer=1,
        n_head=2,
        eos_token_id=vocab["<eos>"],
        bos_token_id=vocab["<eos>"],
    )
    path = tmp_path_factory.mktemp("tiny-gpt2")
    transformers.GPT2LMHeadModel(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_hf_backend_runs_the_loop_with_a_random_model(tiny_model_dir):
    model = HFModel(str(tiny_model_dir), max_new_tokens=8)
    assert model.native_tools is False
    reply = model.complete([{"role": "system", "content": "the"}, {"role": "user", "content": "1 + 2"}], [])
    assert reply.prompt_tokens > 0 and 0 < reply.completion_tokens <= 8
    # a random model produces neither an action nor a final answer: the loop turns that into format-error
    # observations and stops on its step budget, without crashing
    res = Agent(
        model, ToolRegistry([CalculatorTool()]), settings=AgentSettings(max_steps=2, plan=False, reflection=False)
    ).run("1 + 2")
    assert res.stop_reason == "step_budget" and res.steps == 2


def test_hf_backend_without_a_directory_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="local Hugging Face model directory"):
        HFModel(str(tmp_path / "missing"))


def test_hf_embedder_plugs_into_long_term_memory(tiny_model_dir):
    from paperlab.agent.memory import HFEmbedder, LongTermMemory

    emb = HFEmbedder(str(tiny_model_dir))
    vecs = emb.embed(["the 1 + 2", "a calculator"])
    assert vecs.shape == (2, 16) and abs(float((vecs**2).sum(1)[0]) - 1) < 1e-5
    mem = LongTermMemory(embedder=emb)
    mem.add("the 1 + 2")
    mem.add("a calculator")
    assert mem.search("the 1 + 2", k=1, min_score=-1)[0][1] == "the 1 + 2"  # identical text: cosine 1
