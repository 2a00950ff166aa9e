"""The pure parts of distillation: each loss against a hand computation, masking statistics, config, checkpoints."""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ImplicitDeviceFactories

from common.checkpoints import complete_checkpoints, latest_checkpoint, publish, rotate, staging_path
from common.resume import unrestored_random_states
from pretrain.distillation_config import DistillationConfig, load_config
from pretrain.distillation_losses import hidden_cosine, logit_mse, masked_lm_cross_entropy, soft_target_kl
from pretrain.masking import mask_tokens, token_weights
from pretrain.step import distillation_losses, masked_batch

CONFIGS = Path(__file__).resolve().parent.parent / "pretrain" / "configs"

STUDENT = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
TEACHER = [[0.5, 2.5, 0.0], [1.0, 0.0, 2.0]]


def softmax(row: list[float], t: float = 1.0) -> list[float]:
    exps = [math.exp(x / t) for x in row]
    return [e / sum(exps) for e in exps]


class TestLossesByHand:
    def test_soft_target_kl(self) -> None:
        t = 2.0
        expected = 0.0
        for s_row, t_row in zip(STUDENT, TEACHER, strict=True):
            p, q = softmax(t_row, t), softmax(s_row, t)
            expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
        expected = expected / len(STUDENT) * t**2
        got = soft_target_kl(torch.tensor(STUDENT), torch.tensor(TEACHER), t)
        assert got.item() == pytest.approx(expected, rel=1e-6)

    def test_kl_is_zero_for_equal_logits_and_scales_with_t_squared(self) -> None:
        logits = torch.tensor(STUDENT)
        assert soft_target_kl(logits, logits, 3.0).item() == pytest.approx(0.0, abs=1e-7)
        # For large T, T^2 * KL tends to the squared-logit-difference form: it must not vanish as T grows.
        assert soft_target_kl(torch.tensor(STUDENT), torch.tensor(TEACHER), 50.0).item() > 0.1

    def test_masked_lm_cross_entropy(self) -> None:
        targets = [1, 2]
        expected = -sum(math.log(softmax(row)[y]) for row, y in zip(STUDENT, targets, strict=True)) / 2
        got = masked_lm_cross_entropy(torch.tensor(STUDENT), torch.tensor(targets))
        assert got.item() == pytest.approx(expected, rel=1e-6)

    def test_hidden_cosine(self) -> None:
        def cos(a: list[float], b: list[float]) -> float:
            dot = sum(x * y for x, y in zip(a, b, strict=True))
            return dot / math.sqrt(sum(x * x for x in a)) / math.sqrt(sum(y * y for y in b))

        expected = sum(1 - cos(a, b) for a, b in zip(STUDENT, TEACHER, strict=True)) / 2
        got = hidden_cosine(torch.tensor(STUDENT), torch.tensor(TEACHER))
        assert got.item() == pytest.approx(expected, rel=1e-6)

    def test_logit_mse(self) -> None:
        expected = sum((a - b) ** 2 for s, t in zip(STUDENT, TEACHER, strict=True) for a, b in zip(s, t, strict=True))
        got = logit_mse(torch.tensor(STUDENT), torch.tensor(TEACHER))
        assert got.item() == pytest.approx(expected / 2, rel=1e-6)

    def test_weighted_total(self) -> None:
        s_logits, t_logits = torch.tensor(STUDENT), torch.tensor(TEACHER)
        hidden_s, hidden_t = torch.tensor([STUDENT]), torch.tensor([TEACHER])
        mask = torch.ones(1, 2, dtype=torch.long)
        config = DistillationConfig(alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0, alpha_mse=0.5, temperature=2.0)
        terms = distillation_losses(hidden_s, s_logits, hidden_t, t_logits, torch.tensor([1, 2]), mask, config)
        expected = (
            5.0 * soft_target_kl(s_logits, t_logits, 2.0)
            + 2.0 * masked_lm_cross_entropy(s_logits, torch.tensor([1, 2]))
            + 1.0 * hidden_cosine(s_logits, t_logits)
            + 0.5 * logit_mse(s_logits, t_logits)
        )
        assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)

    def test_a_term_of_weight_zero_is_not_computed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import pretrain.step

        def must_not_run(*args: object) -> torch.Tensor:
            raise AssertionError("logit_mse computed although alpha_mse is 0")

        monkeypatch.setattr(pretrain.step, "logit_mse", must_not_run)
        s_logits, t_logits = torch.tensor(STUDENT), torch.tensor(TEACHER)
        config = DistillationConfig(alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0, alpha_mse=0.0)
        terms = distillation_losses(
            torch.tensor([STUDENT]),
            s_logits,
            torch.tensor([TEACHER]),
            t_logits,
            torch.tensor([1, 2]),
            torch.ones(1, 2, dtype=torch.long),
            config,
        )
        assert set(terms) == {"loss", "loss_ce", "loss_mlm", "loss_cos"}
        expected = 5.0 * terms["loss_ce"] + 2.0 * terms["loss_mlm"] + terms["loss_cos"]
        assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)

    def test_cosine_ignores_padding(self) -> None:
        hidden_s = torch.tensor([[[1.0, 0.0], [5.0, 5.0]]])
        hidden_t = torch.tensor([[[1.0, 0.0], [-5.0, 5.0]]])
        mask = torch.tensor([[1, 0]])
        logits = torch.zeros(1, 3)
        terms = distillation_losses(hidden_s, logits, hidden_t, logits, torch.tensor([0]), mask, DistillationConfig())
        assert terms["loss_cos"].item() == pytest.approx(0.0, abs=1e-7)


SPECIAL = [0, 1, 2, 3, 4]


def masking_batch(batch: int = 8, length: int = 128, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(5, 100, (batch, length), generator=torch.Generator().manual_seed(seed))
    ids[:, 0], ids[:, -1], ids[:, 60] = 2, 3, 3  # [CLS] ... [SEP] ... [SEP]
    return ids


class TestMasking:
    def test_statistics_over_many_batches(self) -> None:
        weights = token_weights(np.ones(100, dtype=np.int64), 0.0, SPECIAL)
        generator = torch.Generator().manual_seed(0)
        chosen = masked = randomised = kept = 0
        for seed in range(200):
            ids = masking_batch(seed=seed)
            inputs, labels = mask_tokens(ids, weights, 4, 100, generator)
            picked = labels != -100
            eligible = int((ids >= 5).sum())
            assert int(picked.sum()) == math.ceil(0.15 * eligible)
            assert not picked[ids < 5].any(), "special tokens must never be chosen"
            assert torch.equal(labels[picked], ids[picked])
            assert torch.equal(inputs[~picked], ids[~picked])
            chosen += int(picked.sum())
            masked += int((inputs[picked] == 4).sum())
            same = inputs[picked] == ids[picked]
            kept += int(same.sum())
            randomised += int((~same & (inputs[picked] != 4)).sum())
        assert chosen == 200 * 150
        assert masked / chosen == pytest.approx(0.8, abs=0.01)
        # Random replacements equal to the original (1 in 100 here) count as kept.
        assert randomised / chosen == pytest.approx(0.1 * 0.99, abs=0.01)
        assert kept / chosen == pytest.approx(0.1 + 0.1 * 0.01, abs=0.01)

    def test_uniform_choice_without_smoothing(self) -> None:
        weights = token_weights(np.arange(1, 101, dtype=np.int64) * 1000, 0.0, SPECIAL)
        rates = self.choice_rates(weights)
        assert rates[5] == pytest.approx(0.15, abs=0.02) and rates[99] == pytest.approx(0.15, abs=0.02)

    def test_smoothing_favours_rare_tokens(self) -> None:
        counts = np.full(100, 10, dtype=np.int64)
        counts[5] = 100_000  # a very frequent token
        weights = token_weights(counts, 0.7, SPECIAL)
        assert weights[5].item() == pytest.approx(100_000**-0.7)
        assert weights[:5].sum().item() == 0.0
        rates = self.choice_rates(weights, frequent=5)
        assert rates[5] < 0.01 < 0.1 < rates[50]

    @staticmethod
    def choice_rates(weights: torch.Tensor, frequent: int | None = None) -> np.ndarray:
        seen, picked = np.zeros(100), np.zeros(100)
        generator = torch.Generator().manual_seed(1)
        for seed in range(100):
            ids = masking_batch(seed=seed)
            if frequent is not None:
                ids[:, 1:40] = frequent
            _, labels = mask_tokens(ids, weights, 4, 100, generator)
            seen += np.bincount(ids.flatten().numpy(), minlength=100)
            picked += np.bincount(labels[labels != -100].numpy(), minlength=100)
        return picked / np.maximum(seen, 1)

    def test_every_tensor_is_made_on_the_batch_device(self) -> None:
        """On a GPU, a factory without ``device=`` beside a CUDA batch fails on the first batch (CUDA generator with
        a CPU draw) or indexes across devices; here we check that each one names its device."""
        weights = token_weights(np.ones(100, dtype=np.int64), 0.7, SPECIAL)
        with ImplicitDeviceFactories() as factories:
            mask_tokens(masking_batch(), weights, 4, 100, torch.Generator().manual_seed(0))
            masked_batch(masking_batch(), weights, 3, DistillationConfig(), {"mask": 4, "pad": 1})
        assert factories.calls == []

    def test_masks_depend_on_the_seed_alone(self) -> None:
        """masked_batch seeds its own CPU generator: the same seed gives the same masks, another seed others, and
        nothing else (the global RNG, the weights' device) changes them."""
        weights = token_weights(np.ones(100, dtype=np.int64), 0.7, SPECIAL)
        config, special = DistillationConfig(), {"mask": 4, "pad": 1}
        first = masked_batch(masking_batch(), weights, 11, config, special)
        torch.manual_seed(123)
        again = masked_batch(masking_batch(), weights.double(), 11, config, special)
        other = masked_batch(masking_batch(), weights, 12, config, special)
        assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
        assert not torch.equal(first[1], other[1])
        assert all(t.device == masking_batch().device for t in first)

    def test_same_seed_same_masks(self) -> None:
        weights = token_weights(np.ones(100, dtype=np.int64), 0.7, SPECIAL)
        ids = masking_batch()
        first = mask_tokens(ids, weights, 4, 100, torch.Generator().manual_seed(7))
        second = mask_tokens(ids, weights, 4, 100, torch.Generator().manual_seed(7))
        assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_the_whole_step_and_evaluation_make_tensors_on_the_batch_device() -> None:
    """The loop's per-batch work (masking, both forward passes, every loss term, evaluation) names the device of
    each tensor it makes; on CUDA that is the GPU contract test_cuda.py checks by running."""
    from accelerate import Accelerator
    from transformers import BertConfig, BertForMaskedLM

    from modeling.student import build_student
    from pretrain.step import DistillationStudent, distillation_step, evaluate

    torch.manual_seed(0)
    shape = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64}
    teacher = BertForMaskedLM(BertConfig(vocab_size=100, num_hidden_layers=2, pad_token_id=1, **shape)).eval()
    module = DistillationStudent(build_student(teacher, [0]))
    config = DistillationConfig(alpha_mse=1.0, eval_max_batches=2)
    weights = token_weights(np.ones(100, dtype=np.int64), 0.7, SPECIAL)
    accelerator, special = Accelerator(cpu=True), {"mask": 4, "pad": 1}
    with ImplicitDeviceFactories() as factories:
        terms = distillation_step(accelerator, module, teacher, masking_batch(4, 64), weights, 1, config, special)
        terms["loss"].backward()
        metrics = evaluate(accelerator, module, teacher, [masking_batch(2, 64)] * 2, weights, config, special)
    assert factories.calls == []
    assert set(terms) == {"loss", "loss_ce", "loss_mlm", "loss_cos", "loss_mse"}
    assert metrics["eval_tokens"] == 2 * math.ceil(0.15 * 2 * 61)  # 61 non-special tokens a block


class TestConfig:
    @pytest.mark.parametrize("preset", ["distilkobert_1layer", "distilkobert_3layer", "distilkobert_6layer"])
    def test_presets_load(self, preset: str) -> None:
        config = load_config(CONFIGS / f"{preset}.yaml")
        assert config.teacher == "monologg/kobert-lm"
        assert len(config.student_layers) == int(preset[-6])

    def test_tiny_needs_paths_and_takes_overrides(self) -> None:
        with pytest.raises(ValueError, match="teacher is required"):
            load_config(CONFIGS / "tiny.yaml")
        config = load_config(
            CONFIGS / "tiny.yaml",
            [
                "--teacher",
                "t",
                "--data_dir",
                "d",
                "--output-dir",
                "o",
                "--student_layers",
                "0",
                "1",
                "--resume",
                "--temperature",
                "3",
                "--max_steps=7",
            ],
        )
        assert (config.student_layers, config.resume, config.temperature, config.max_steps) == ([0, 1], True, 3.0, 7)

    def test_unknown_keys_are_errors(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"unrecognized arguments: --alpha_kl 1; did you mean --alpha_mlm\?"):
            load_config(CONFIGS / "distilkobert_3layer.yaml", ["--alpha_kl", "1"])
        bad = tmp_path / "bad.yaml"
        bad.write_text("teacher: t\ndata_dir: d\noutput_dir: o\nlearning_rte: 0.1\n")
        with pytest.raises(ValueError, match="learning_rte"):
            load_config(bad)

    @pytest.mark.parametrize(
        ("override", "message"),
        [
            (["--temperature", "0"], "temperature must be > 0"),
            (["--max_steps", "ten"], "--max_steps.*invalid int value: 'ten'"),
            (["--resume", "maybe"], "--resume.*Truthy value expected"),
            (["--mixed_precision", "fp8"], "mixed_precision must be"),
            (["--teacher_dtype", "int8"], "teacher_dtype must be one of float32, bfloat16, float16, got 'int8'"),
            (["--mlm_probability", "1.5"], "mlm_probability"),
        ],
    )
    def test_bad_values(self, override: list[str], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            load_config(CONFIGS / "distilkobert_3layer.yaml", override)

    def test_a_bad_preset_value_names_the_file(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text("teacher: t\ndata_dir: d\noutput_dir: o\nstudent_layers: [0, x]\n")
        with pytest.raises(ValueError, match=f"{bad}: argument --student_layers.*invalid int value: 'x'"):
            load_config(bad)

    def test_no_abbreviations_and_a_suggestion(self) -> None:
        with pytest.raises(ValueError, match=r"unrecognized arguments: --temp 3; did you mean --temperature\?"):
            load_config(CONFIGS / "distilkobert_3layer.yaml", ["--temp", "3"])

    def test_help_lists_every_key_with_its_default(self, capsys: pytest.CaptureFixture[str]) -> None:
        from pretrain.run import main

        with pytest.raises(SystemExit) as exit_info:
            main(["--help"])
        assert exit_info.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--temperature TEMPERATURE Softmax temperature of the KL term. (default: 2.0)" in text
        assert "--config CONFIG" in text
        assert "--no_fold_token_type Turn --fold_token_type off." in text  # the snake spelling alone


class TestCheckpoints:
    def make(self, root: Path, step: int, complete: bool = True) -> Path:
        staging = staging_path(root, step)
        staging.mkdir(parents=True)
        (staging / "weights").write_text(str(step))
        if complete:
            publish(staging, root / f"checkpoint-{step}", {"step": step})
        return staging

    def test_latest_ignores_staging_and_incomplete_folders(self, tmp_path: Path) -> None:
        self.make(tmp_path, 5)
        self.make(tmp_path, 10)
        self.make(tmp_path, 15, complete=False)  # a save that died half-way
        (tmp_path / "checkpoint-20").mkdir()  # no trainer_state.json: not complete
        assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
        assert latest_checkpoint(tmp_path / "nowhere") is None

    def test_rotate_keeps_the_newest(self, tmp_path: Path) -> None:
        for step in (5, 10, 15, 100):
            self.make(tmp_path, step)
        rotate(tmp_path, 2)
        assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-15", "checkpoint-100"]


@pytest.fixture
def global_random_states() -> Iterator[None]:
    """Python's, NumPy's and torch's global generators as they were: the test below moves them."""
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(saved[0])
    np.random.set_state(saved[1])
    torch.set_rng_state(saved[2])


def test_random_states_not_restored_by_load_state_are_named(tmp_path: Path, global_random_states: None) -> None:
    from accelerate import PartialState
    from accelerate.checkpointing import load_accelerator_state, save_accelerator_state

    PartialState()  # what Accelerator() sets up before its save_state and load_state
    save_accelerator_state(str(tmp_path), [], [], [], [], process_index=0, step=0)
    assert unrestored_random_states(tmp_path, 0) is None  # nothing drawn since
    torch.rand(3)
    assert unrestored_random_states(tmp_path, 0) == "random_states_0.pkl did not restore the torch generator states"
    random.random(), np.random.rand()
    assert unrestored_random_states(tmp_path, 0) == (
        "random_states_0.pkl did not restore the random, numpy, torch generator states"
    )
    load_accelerator_state(str(tmp_path), [], [], [], [], process_index=0)
    assert unrestored_random_states(tmp_path, 0) is None
    # A damaged file: load_state goes on without a word above INFO, the states stay as they were; we name it.
    (tmp_path / "random_states_0.pkl").write_bytes(b"not a pickle")
    load_accelerator_state(str(tmp_path), [], [], [], [], process_index=0)
    assert re.fullmatch(r"random_states_0\.pkl could not be read \(\w+: .*\)", unrestored_random_states(tmp_path, 0))
    assert unrestored_random_states(tmp_path, 1).startswith("random_states_1.pkl could not be read (FileNotFoundError")


def test_mask_seeds_are_a_stable_digest_of_the_place_in_training() -> None:
    from pretrain.step import mask_seed

    # A digest of the place: the same on every Python version (hash() of a tuple does not promise that).
    expected = int.from_bytes(hashlib.blake2b(b"56,1,2,3", digest_size=8).digest(), "little") % 2**63
    assert mask_seed(56, 1, 2, 3) == expected
    assert len({mask_seed(56, e, b, p) for e in range(3) for b in range(3) for p in range(2)}) == 18


def test_a_random_replacement_by_pad_keeps_its_attention() -> None:
    """Only id 5 is eligible and every chosen token is replaced by a random id of the 6-token vocabulary, [PAD]
    (id 1) among them: the attention mask comes from the blocks, not from the replaced inputs."""
    blocks = torch.full((1, 40), 5)
    blocks[0, 0], blocks[0, -1] = 2, 3
    weights = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    config = DistillationConfig(mlm_probability=0.5, mask_probability=0.0, random_probability=1.0)
    inputs, _, attention_mask, positions = masked_batch(blocks, weights, 0, config, {"mask": 4, "pad": 1})
    assert (inputs[positions] == 1).any(), "no replacement drew [PAD]: pick another seed"
    assert attention_mask.all()


def test_hidden_mse_by_hand() -> None:
    """Two layer pairs: errors (1 - 0)^2 + (3 - 1)^2 over 2 values = 2.5, and 0; their mean 1.25."""
    from pretrain.distillation_losses import hidden_mse

    student = [torch.tensor([[1.0, 3.0]]), torch.tensor([[2.0, 2.0]])]
    teacher = [torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 2.0]])]
    assert hidden_mse(student, teacher).item() == pytest.approx(1.25)


def test_layer_maps() -> None:
    from pretrain.step import check_layer_map, default_layer_map

    assert default_layer_map(3, 12) == [4, 8, 12]
    assert default_layer_map(6, 12) == [2, 4, 6, 8, 10, 12]
    assert default_layer_map(2, 4) == [2, 4]
    with pytest.raises(ValueError, match=r"\[13\] out of range"):
        check_layer_map([4, 8, 13], 3, 12)


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_a_teacher_kept_in_lower_precision_gives_float32_targets_near_the_float32_teachers(name: str) -> None:
    """--teacher_dtype: prepare_models keeps the frozen teacher's weights in the lower precision (the student's stay
    float32) and teacher_outputs hands the losses float32 tensors, within rounding of the float32 teacher's."""
    import copy

    from accelerate import Accelerator
    from transformers import BertConfig, BertForMaskedLM

    from modeling.student import build_student
    from pretrain.step import distillation_step, teacher_outputs
    from pretrain.trainer import prepare_models

    torch.manual_seed(0)
    shape = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64}
    teacher = BertForMaskedLM(BertConfig(vocab_size=100, num_hidden_layers=2, pad_token_id=1, **shape)).eval()
    config = DistillationConfig(teacher_dtype=name, alpha_mse=1.0, alpha_hidden_mse=1.0, hidden_layer_map=[2])
    lower = copy.deepcopy(teacher)
    module = prepare_models(config, build_student(teacher, [0]), lower)
    assert {p.dtype for p in lower.parameters()} == {getattr(torch, name)}
    assert {p.dtype for p in module.parameters()} == {torch.float32}

    weights = token_weights(np.ones(100, dtype=np.int64), 0.7, SPECIAL)
    special = {"mask": 4, "pad": 1}
    inputs, _, attention_mask, positions = masked_batch(masking_batch(4, 64), weights, 1, config, special)
    exact = teacher_outputs(teacher, inputs, attention_mask, positions, with_layers=True)
    approx = teacher_outputs(lower, inputs, attention_mask, positions, with_layers=True)
    assert {t.dtype for t in (approx.hidden, approx.logits, *approx.layers)} == {torch.float32}
    cosine = torch.nn.functional.cosine_similarity(exact.hidden.flatten(0, 1), approx.hidden.flatten(0, 1), dim=-1)
    assert cosine.min() > 0.999
    kl = soft_target_kl(approx.logits, exact.logits, config.temperature)  # student slot: the copy
    assert 0 < kl < 1e-3

    accelerator = Accelerator(cpu=True)
    terms = {}
    for label, frozen in (("float32", teacher), (name, lower)):
        torch.manual_seed(1)
        student = prepare_models(config, build_student(teacher, [0]), None)
        terms[label] = distillation_step(
            accelerator, student, frozen, masking_batch(4, 64), weights, 1, config, special
        )
    for term, value in terms["float32"].items():
        assert terms[name][term].dtype == torch.float32
        assert terms[name][term].item() == pytest.approx(value.item(), rel=2e-2, abs=1e-4), term
