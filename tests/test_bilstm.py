"""KoBiLSTM (modeling/bilstm.py): preset sizes, padding invariance, devices, loss, errors and the Auto round trip."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import KOBERT_FILES, ImplicitDeviceFactories

from modeling.bilstm import (
    POOLINGS,
    PRESETS,
    KoBiLstmConfig,
    KoBiLstmForSequenceClassification,
    bilstm_config,
)

# DistilKoBiLSTM's table: total parameters at a 3,000-token vocabulary and 2 labels.
TARGETS = {"tiny": 27_000, "mini": 52_000, "small": 146_434, "base": 391_170, "large": 1_200_000}
PAD = 1


def lstm_parameters(input_size: int, hidden: int, layers: int) -> int:
    """A bidirectional nn.LSTM: per layer and direction, four gates of W_ih (hidden x input), W_hh (hidden x hidden)
    and two bias vectors; layers after the first read both directions (2 * hidden)."""
    total = 0
    for layer in range(layers):
        inputs = input_size if layer == 0 else 2 * hidden
        total += 2 * (4 * hidden * inputs + 4 * hidden * hidden + 2 * 4 * hidden)
    return total


def expected_parameters(vocab: int, embedding: int, hidden: int, layers: int, labels: int) -> int:
    return vocab * embedding + lstm_parameters(embedding, hidden, layers) + 2 * hidden * labels + labels


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny_model(pooling: str = "max", **overrides) -> KoBiLstmForSequenceClassification:
    torch.manual_seed(0)
    return KoBiLstmForSequenceClassification(
        bilstm_config("tiny", vocab_size=50, pad_token_id=PAD, pooling=pooling, **overrides)
    ).eval()


def padded(sequences: list[list[int]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask ``(len(sequences), length)``."""
    ids = torch.full((len(sequences), length), PAD)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
    return ids, mask


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_sizes_match_the_lstm_formula_and_the_distilkobilstm_table(preset: str) -> None:
    model = KoBiLstmForSequenceClassification(bilstm_config(preset, vocab_size=3000, pad_token_id=0))
    sizes = PRESETS[preset]
    expected = expected_parameters(3000, sizes["embedding_size"], sizes["hidden_size"], 1, 2)
    assert count(model) == expected
    assert abs(expected - TARGETS[preset]) / TARGETS[preset] < 0.05


def test_small_and_base_are_distilkobilstm_exactly() -> None:
    # DistilKoBiLSTM-Small: embedding 32, hidden 64; -Base: embedding 64, hidden 128 (its Hyperparameter_Acc.md).
    assert expected_parameters(3000, 32, 64, 1, 2) == 146_434
    assert expected_parameters(3000, 64, 128, 1, 2) == 391_170


def test_stacked_layers_and_label_count_follow_the_formula() -> None:
    config = bilstm_config("mini", vocab_size=777, pad_token_id=3, num_labels=5, num_hidden_layers=3)
    assert count(KoBiLstmForSequenceClassification(config)) == expected_parameters(777, 16, 16, 3, 5)


def test_padding_row_starts_at_zero_and_layers_use_pytorch_initialisation() -> None:
    model = tiny_model()
    embeddings = model.bilstm.embeddings.weight
    assert torch.equal(embeddings[PAD], torch.zeros(8))
    assert 0.7 < embeddings.std().item() < 1.3  # N(0, 1), not transformers' std 0.02
    bound = 1 / math.sqrt(16)
    assert all(p.abs().max() <= bound for p in model.bilstm.lstm.parameters())


@pytest.mark.parametrize("pooling", POOLINGS)
def test_a_sequence_gets_the_same_logits_alone_and_padded_in_a_batch(pooling: str) -> None:
    model = tiny_model(pooling, num_hidden_layers=2)
    sequences = [[5, 6, 7], [8, 9, 10, 11, 12, 13, 14], [15], [16, 17, 18, 19]]
    with torch.no_grad():
        alone = [model(torch.tensor([s])).logits[0] for s in sequences]
        for length in (7, 12):
            batch = model(*padded(sequences, length)).logits
            for row, expected in enumerate(alone):
                torch.testing.assert_close(batch[row], expected, atol=1e-6, rtol=0)
        # The pad id itself is never read: another id in the padded positions changes nothing.
        ids, mask = padded(sequences, 9)
        ids[mask == 0] = 42
        torch.testing.assert_close(model(ids, mask).logits, torch.stack(alone), atol=1e-6, rtol=0)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_no_tensor_is_made_without_the_inputs_device(pooling: str) -> None:
    model = tiny_model(pooling)
    model.train()  # dropout's masks too
    ids, mask = padded([[5, 6, 7], [8, 9, 10, 11, 12]], 6)
    with ImplicitDeviceFactories() as factories:
        output = model(ids, mask, labels=torch.tensor([0, 1]))
        output.loss.backward()
    assert factories.calls == []


def test_the_three_poolings_are_different_functions() -> None:
    ids, mask = padded([[5, 6, 7, 8], [9, 10]], 4)
    with torch.no_grad():
        logits = [tiny_model(pooling)(ids, mask).logits for pooling in POOLINGS]
    assert not torch.allclose(logits[0], logits[1])
    assert not torch.allclose(logits[0], logits[2])
    assert not torch.allclose(logits[1], logits[2])


def test_last_pooling_is_the_final_forward_and_backward_states() -> None:
    model = tiny_model("last")
    sequence = [5, 6, 7, 8]
    with torch.no_grad():
        states, _ = model.bilstm.lstm(model.bilstm.embeddings(torch.tensor([sequence])))
        hidden = model.config.hidden_size
        # The forward direction ends at the last token, the backward one at the first.
        expected = torch.cat([states[0, -1, :hidden], states[0, 0, hidden:]])
        torch.testing.assert_close(model.bilstm(torch.tensor([sequence]))[0], expected)


def test_max_and_mean_pool_the_valid_states_only() -> None:
    ids, mask = padded([[5, 6, 7]], 5)
    with torch.no_grad():
        for pooling, reduce in (("max", lambda s: s.max(dim=0).values), ("mean", lambda s: s.mean(dim=0))):
            model = tiny_model(pooling)
            states, _ = model.bilstm.lstm(model.bilstm.embeddings(ids[:, :3]))
            torch.testing.assert_close(model.bilstm(ids, mask)[0], reduce(states[0]))


def test_loss_is_cross_entropy_over_the_labelled_examples() -> None:
    model = tiny_model()
    ids, mask = padded([[5, 6], [7, 8, 9], [10]], 3)
    with torch.no_grad():
        output = model(ids, mask, labels=torch.tensor([1, -100, 0]))
    logits = output.logits.tolist()

    def nll(row: list[float], label: int) -> float:
        return math.log(sum(math.exp(z) for z in row)) - row[label]

    assert output.loss.item() == pytest.approx((nll(logits[0], 1) + nll(logits[2], 0)) / 2, abs=1e-6)
    assert model(ids, mask).loss is None


def test_tokenizer_outputs_pass_as_keyword_arguments() -> None:
    from tokenization_kobert import KoBertTokenizerFast

    tokenizer = KoBertTokenizerFast(**KOBERT_FILES)
    torch.manual_seed(0)
    config = bilstm_config("tiny", vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    model = KoBiLstmForSequenceClassification(config).eval()
    texts = ["정말 재미있는 영화였다", "별로"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert "token_type_ids" in batch and batch["attention_mask"].min() == 0
    with torch.no_grad():
        logits = model(**batch, labels=torch.tensor([1, 0])).logits
        alone = model(**tokenizer(texts[1:], return_tensors="pt")).logits
    torch.testing.assert_close(logits[1:], alone, atol=1e-6, rtol=0)


def test_no_mask_means_every_position_is_valid_and_tuples_on_request() -> None:
    model = tiny_model()
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, model(ids, torch.ones_like(ids)).logits)
        loss, logits = model(ids, labels=torch.tensor([0, 1]), return_dict=False)
    assert logits.shape == (2, 2) and loss.dim() == 0


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        ([[0, 1, 1], [1, 1, 1]], "right-padded"),
        ([[1, 0, 1], [1, 1, 1]], "right-padded"),
        ([[0, 0, 0], [1, 1, 1]], "at least one token"),
    ],
)
def test_masks_that_packing_would_misread_are_refused(mask: list[list[int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_model()(torch.tensor([[5, 6, 7], [8, 9, 10]]), torch.tensor(mask))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pad_token_id": 3000}, "pad_token_id 3000 is not an id"),
        ({"pad_token_id": -1}, "pad_token_id must be at least 0"),
        ({"embedding_size": "16"}, "embedding_size must be an integer"),
        ({"hidden_size": 0}, "hidden_size must be at least 1"),
        ({"dropout": 1.0}, "dropout must be in"),
    ],
)
def test_bad_configs_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KoBiLstmConfig(**{"vocab_size": 3000, **fields})


def test_unknown_pooling_and_preset_are_refused() -> None:
    with pytest.raises(ValueError, match="pooling must be one of max, mean, last"):
        KoBiLstmConfig(pooling="attention")
    with pytest.raises(ValueError, match="choose one of tiny, mini, small, base, large"):
        bilstm_config("huge", vocab_size=3000, pad_token_id=0)


def test_the_remote_code_file_imports_only_torch_transformers_and_the_standard_library() -> None:
    source = Path(sys.modules[KoBiLstmConfig.__module__].__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import would not resolve in a Hub folder"
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names <= {"torch", "transformers"}


LOAD_IN_FRESH_PROCESS = """
import json, sys, torch
from transformers import AutoConfig, AutoModelForSequenceClassification
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
ids, mask = json.loads(sys.argv[2])
with torch.no_grad():
    logits = model(torch.tensor(ids), torch.tensor(mask)).logits
config = AutoConfig.from_pretrained(sys.argv[1], trust_remote_code=True)
print(json.dumps({"logits": logits.tolist(), "class": type(model).__module__ + "." + type(model).__name__,
                  "config": type(config).__name__, "pooling": config.pooling, "pad": config.pad_token_id}))
"""


def test_save_pretrained_round_trips_through_the_auto_classes_in_a_fresh_process(tmp_path: Path) -> None:
    model = tiny_model("mean", num_hidden_layers=2)
    folder = tmp_path / "bilstm"
    model.save_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["bilstm.py", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "kobilstm"
    assert config["auto_map"] == {
        "AutoConfig": "bilstm.KoBiLstmConfig",
        "AutoModelForSequenceClassification": "bilstm.KoBiLstmForSequenceClassification",
    }

    ids, mask = padded([[5, 6, 7, 8], [9, 10]], 4)
    with torch.no_grad():
        expected = model(ids, mask).logits
    # `modeling` is importable there too (an editable install): the class's module shows it came from the folder.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_IN_FRESH_PROCESS, str(folder), json.dumps([ids.tolist(), mask.tolist()])],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["class"].startswith("transformers_modules.")
    assert loaded["class"].endswith("bilstm.KoBiLstmForSequenceClassification")
    assert (loaded["config"], loaded["pooling"], loaded["pad"]) == ("KoBiLstmConfig", "mean", PAD)
    assert loaded["logits"] == expected.tolist()


@pytest.mark.parametrize("layers", [1, 2])
def test_the_states_equal_pytorchs_packed_sequences(layers: int) -> None:
    # The oracle: nn.LSTM over a PackedSequence, PyTorch's own way of skipping padding in both directions.
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    model = tiny_model(num_hidden_layers=layers).eval()
    generator = torch.Generator().manual_seed(3)
    lengths = torch.tensor([9, 1, 5, 9, 3])
    ids = torch.randint(5, 50, (5, 9), generator=generator)
    mask = (torch.arange(9)[None] < lengths[:, None]).long()
    with torch.no_grad():
        embedded = model.bilstm.embeddings(ids)
        packed, (final, _) = model.bilstm.lstm(pack_padded_sequence(embedded, lengths, True, enforce_sorted=False))
        expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=9)
        valid = mask.bool()[:, :, None]
        pooled = {
            "max": expected.masked_fill(~valid, float("-inf")).amax(1),
            "mean": (expected * valid).sum(1) / lengths[:, None],
            "last": torch.cat([final[-2], final[-1]], dim=-1),
        }
        for pooling, vector in pooled.items():
            model.bilstm.config.pooling = pooling
            assert torch.allclose(model.bilstm(ids, mask), vector, atol=1e-6), pooling
