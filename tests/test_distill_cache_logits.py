"""python -m distill.cache_logits: the cached logits equal the teacher called directly on each text, keyed by
example (augmented copies included); an ensemble caches the mean of its members; a cache of another teacher, edited
data or other augmentation is refused and left whole (--overwrite replaces it); a finished cache is up to date; an
run killed (SIGKILL) resumes without recomputing its done blocks and ends equal to an uninterrupted one; two processes
(gloo) write the same cache as one; bad inputs stop with one error line before a teacher runs."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import ROOT, TWO_CPU_PROCESSES, read_lines
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from distill import teacher_logits
from distill.augment import Augmenter, AugmentSettings
from distill.cache_logits import CacheLogitsArguments, cache_logits, main
from distill.examples import CachedExamples, read_cache_info
from distill.tokenizer import train_student_tokenizer
from modeling.bilstm import KoBiLstmForSequenceClassification, bilstm_config
from tokenization_kobert import KoBertTokenizerFast

KOBERT_DIR = ROOT / "data" / "kobert"
MAX_LENGTH, BATCH, BLOCK = 32, 3, 4
AUGMENT = ["--mask_per_example", "1", "--ngram_per_example", "1", "--augment_seed", "7"]
LABELLED = [  # (document, label) after the header: lines 2 to 9
    ("영화가 정말 재미있었다", 1),
    ("배우들의 연기가 너무 어색하고 지루했다", 0),
    ("다시 보고 싶은 최고의 작품", 1),
    ("시간이 아까운 영화", 0),
    ("음악이 좋았다", 1),
    ("스토리가 엉성하고 결말이 허무하다 정말 별로", 0),
    ("가족과 함께 보기 좋은 따뜻한 영화입니다", 1),
    ("ㅋㅋ", 0),
]
UNLABELLED = ["배송이 빨라서 좋아요", "", "생각보다 크기가 작네요 그래도 만족합니다", "별로예요", "가성비 최고"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random sequence classifiers (a BERT and a DistilBERT of 2 labels, a BERT of 3) and a masked LM, each
    saved with the bundled KoBERT tokenizer (built in a blink, where the session's takes a minute to train)."""
    root = tmp_path_factory.mktemp("teachers")
    tokenizer = KoBertTokenizerFast.from_pretrained(KOBERT_DIR)
    tiny = {"vocab_size": 8002, "max_position_embeddings": 64, "pad_token_id": 1}
    bert = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, **tiny}
    torch.manual_seed(0)
    built = {
        "bert": BertForSequenceClassification(BertConfig(num_labels=2, **bert)),
        "distilbert": DistilBertForSequenceClassification(
            DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, num_labels=2, **tiny)
        ),
        "three": BertForSequenceClassification(BertConfig(num_labels=3, **bert)),
        "masked_lm": BertForMaskedLM(BertConfig(**bert)),
    }
    for name, model in built.items():
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    # A BiLSTM with a tokenizer of its own, as distill.train saves one (a BiLSTM teacher, or an ensemble member).
    texts = [line.split("\t")[1] for line in read_lines(ROOT / "data" / "nsmc_train.txt.gz", 301)[1:]]
    bilstm_tokenizer = train_student_tokenizer(lambda: iter(texts), 300)
    bilstm = KoBiLstmForSequenceClassification(
        bilstm_config("tiny", len(bilstm_tokenizer), bilstm_tokenizer.pad_token_id)
    )
    bilstm.save_pretrained(root / "bilstm")
    bilstm_tokenizer.save_pretrained(root / "bilstm")
    return {name: root / name for name in [*built, "bilstm"]}


def write_data(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    labelled = folder / "train.tsv"
    rows = [f"{i}\t{text}\t{label}" for i, (text, label) in enumerate(LABELLED)]
    labelled.write_text("\n".join(["id\tdocument\tlabel", *rows]) + "\n", encoding="utf-8")
    unlabelled = folder / "reviews.txt"
    unlabelled.write_text("\n".join(UNLABELLED) + "\n", encoding="utf-8")
    return [labelled, unlabelled]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_data(tmp_path_factory.mktemp("data"))


def originals() -> dict[str, tuple[str, int]]:
    """Key -> (text, label) of every example of the data, counted here by hand: lines 2.. of the labelled file,
    the non-blank lines of the unlabelled one by their line number."""
    keys = {f"train.tsv:{line}": example for line, example in enumerate(LABELLED, start=2)}
    keys |= {f"reviews.txt:{line}": (text, -100) for line, text in enumerate(UNLABELLED, start=1) if text}
    return keys


def argv(teachers: list[Path], data: list[Path], output: Path, *extra: str) -> list[str]:
    return [
        *["--teacher_name_or_path", *map(str, teachers)],
        *["--data_files", *map(str, data), "--output_dir", str(output)],
        *["--max_seq_length", str(MAX_LENGTH), "--batch_size", str(BATCH), "--block_rows", str(BLOCK), *extra],
    ]


@pytest.fixture(scope="module")
def bert_cache(teachers: dict[str, Path], data: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BERT teacher's cache of the data with a masked copy and an n-gram copy of each example."""
    output = tmp_path_factory.mktemp("bert_cache") / "cache"
    main(argv([teachers["bert"]], data, output, *AUGMENT))
    return output


def cached(folder: Path) -> dict[str, tuple[Any, np.ndarray]]:
    """Key -> (example, logits) of a finished cache."""
    assert read_cache_info(folder)["complete"] is True
    rows = CachedExamples(folder)
    return {rows[i][0].key: rows[i] for i in range(len(rows))}


def direct_logits(teacher: Path) -> Callable[[str], np.ndarray]:
    """The oracle: the teacher loaded by transformers' Auto classes, called on one text alone (no padding)."""
    model = AutoModelForSequenceClassification.from_pretrained(teacher).eval()
    tokenizer = AutoTokenizer.from_pretrained(teacher, trust_remote_code=True)

    def logits(text: str) -> np.ndarray:
        with torch.no_grad():
            inputs = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            return model(**inputs).logits[0].numpy()

    return logits


def expected_copies() -> dict[str, tuple[str, str]]:
    """Key -> (text, origin) of every augmented copy, from distill.augment itself (numbered within each file)."""
    augmenter = Augmenter(AugmentSettings(mask_per_example=1, ngram_per_example=1, seed=7), [])
    by_file: dict[str, list[str]] = {}
    for key in originals():
        by_file.setdefault(key.split(":")[0], []).append(key)
    copies = {}
    for keys in by_file.values():
        for index, key in enumerate(keys):
            for n, text in enumerate(augmenter.augment(originals()[key][0], index), start=1):
                copies[f"{key}#aug{n}"] = (text, key)
    return copies


def test_the_logits_are_the_teachers_own_for_each_keyed_example(bert_cache: Path, teachers: dict[str, Path]) -> None:
    rows, copies, teacher = cached(bert_cache), expected_copies(), direct_logits(teachers["bert"])
    assert copies, "the augmentation made no copies: nothing checked"
    expected = {key: (text, label, key) for key, (text, label) in originals().items()}
    expected |= {key: (text, -100, origin) for key, (text, origin) in copies.items()}
    assert set(rows) == set(expected)
    for key, (example, logits) in rows.items():
        assert (example.text, example.label, example.origin) == expected[key]
        np.testing.assert_allclose(logits, teacher(expected[key][0]), atol=1e-5)
    # Each example is followed by its copies, the files in the order given.
    order = [key for original in originals() for key in [original, *(k for k in copies if copies[k][1] == original)]]
    assert [example.key for example in CachedExamples(bert_cache)] == order
    info = read_cache_info(bert_cache)
    assert info["rows"] == len(rows) and info["num_labels"] == 2
    assert info["sources"] == {"labelled": len(LABELLED), "unlabelled": 4, "augmented": len(copies)}
    assert [(d["name"], d["rows"], d["labelled"]) for d in info["data"]] == [
        ("train.tsv", len(LABELLED), True),
        ("reviews.txt", 4, False),
    ]
    assert info["augmentation"]["mask_per_example"] == 1 and info["augmentation"]["pos_engine"] is None
    # Accuracy on the labelled file's own examples (copies have no gold label), from the teacher called directly.
    right = sum(int(np.argmax(teacher(text))) == label for text, label in LABELLED)
    assert info["teacher_accuracy"] == {"train.tsv": right / len(LABELLED)}
    assert not (bert_cache / teacher_logits.PROGRESS_DIR).exists()


def test_an_ensemble_caches_the_mean_of_its_teachers(
    teachers: dict[str, Path], data: list[Path], bert_cache: Path, tmp_path: Path
) -> None:
    main(argv([teachers["distilbert"]], data, tmp_path / "distilbert", *AUGMENT))
    report = cache_logits(  # the typed function the command calls
        CacheLogitsArguments(
            teacher_name_or_path=[str(teachers["bert"]), str(teachers["distilbert"])],
            data_files=[str(path) for path in data],
            output_dir=str(tmp_path / "ensemble"),
            max_seq_length=MAX_LENGTH,
            batch_size=BATCH,
            block_rows=BLOCK,
            mask_per_example=1,
            ngram_per_example=1,
            augment_seed=7,
        )
    )
    bert, distilbert, ensemble = cached(bert_cache), cached(tmp_path / "distilbert"), cached(tmp_path / "ensemble")
    assert (report.rows, report.teachers, report.up_to_date) == (len(bert), 2, False)
    assert report.teacher_accuracy == read_cache_info(tmp_path / "ensemble")["teacher_accuracy"]
    assert set(ensemble) == set(bert)
    for key, (_, logits) in ensemble.items():
        np.testing.assert_allclose(logits, (bert[key][1] + distilbert[key][1]) / 2, atol=1e-6)
    assert len(read_cache_info(tmp_path / "ensemble")["teachers"]) == 2


def test_a_bilstm_teacher_loads_without_remote_code_and_joins_an_ensemble_of_another_tokenizer(
    teachers: dict[str, Path], data: list[Path], bert_cache: Path, tmp_path: Path
) -> None:
    # A BiLSTM trained by distill.train (e.g. on all the labels) is a teacher too; it right-pads its own tokens.
    main(argv([teachers["bilstm"]], data, tmp_path / "bilstm"))
    main(argv([teachers["bert"], teachers["bilstm"]], data, tmp_path / "ensemble"))
    bilstm, ensemble, bert = cached(tmp_path / "bilstm"), cached(tmp_path / "ensemble"), cached(bert_cache)
    teacher = direct_logits(teachers["bilstm"])
    assert set(bilstm) == set(originals())
    for key, (example, logits) in bilstm.items():
        np.testing.assert_allclose(logits, teacher(example.text), atol=1e-5)
        np.testing.assert_allclose(ensemble[key][1], (bert[key][1] + logits) / 2, atol=1e-6)


def folder_snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def stopped(args: list[str]) -> str:
    """The message a run ends with: one ``error:`` line, no traceback."""
    with pytest.raises(SystemExit) as stop:
        main(args)
    message = str(stop.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


def test_a_stale_cache_is_refused_and_left_whole_and_overwrite_replaces_it(
    teachers: dict[str, Path], data: list[Path], bert_cache: Path, tmp_path: Path
) -> None:
    output = tmp_path / "cache"
    shutil.copytree(bert_cache, output)
    before = folder_snapshot(output)
    edited = write_data(tmp_path / "edited")
    edited[1].write_text(edited[1].read_text(encoding="utf-8").replace("별로예요", "별로에요"), encoding="utf-8")
    refusals = {
        "teachers: the cache has": argv([teachers["distilbert"]], data, output, *AUGMENT),
        f"data: {edited[1]} is not the reviews.txt the cache was made from": argv(
            [teachers["bert"]], edited, output, *AUGMENT
        ),
        "augmentation: the cache has mask_per_example 1, not mask_per_example 2": argv(
            [teachers["bert"]], data, output, *AUGMENT, "--mask_per_example", "2"
        ),
        "max_seq_length: the cache has 32, not 16": [
            *argv([teachers["bert"]], data, output, *AUGMENT),
            "--max_seq_length",
            "16",
        ],
        "max_examples_per_file: the cache has 0, not 3": [
            *argv([teachers["bert"]], data, output, *AUGMENT),
            "--max_examples_per_file",
            "3",
        ],
    }
    for difference, args in refusals.items():
        message = stopped(args)
        assert difference in message and "--overwrite" in message
        assert folder_snapshot(output) == before
        assert "train.tsv" not in message  # only what differs is named: the labelled file is the same throughout

    main([*argv([teachers["distilbert"]], edited, output), "--overwrite"])
    info = read_cache_info(output)
    assert info["complete"] and info["teachers"][0]["path"] == str(teachers["distilbert"])
    assert info["augmentation"] is None and info["rows"] == len(originals())
    assert "별로에요" in {example.text for example in CachedExamples(output)}

    # The first N examples of each file, for a quick run: by line order, before any augmentation.
    main([*argv([teachers["distilbert"]], edited, output), "--overwrite", "--max_examples_per_file", "3"])
    keys = [example.key for example in CachedExamples(output)]
    assert keys == ["train.tsv:2", "train.tsv:3", "train.tsv:4", "reviews.txt:1", "reviews.txt:3", "reviews.txt:4"]


def test_a_finished_cache_is_up_to_date_and_nothing_runs(
    teachers: dict[str, Path],
    data: list[Path],
    bert_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    before = folder_snapshot(bert_cache)

    def no_teacher(*args: Any) -> None:
        raise AssertionError("a teacher was loaded for an up-to-date cache")

    monkeypatch.setattr(teacher_logits, "load_teachers", no_teacher)
    main(argv([teachers["bert"]], data, bert_cache, *AUGMENT))
    assert capsys.readouterr().out == f"{bert_cache} is up to date ({len(cached(bert_cache))} rows); nothing to do\n"
    assert folder_snapshot(bert_cache) == before


# A run killed (SIGKILL: no clean-up of any kind) when the teacher is about to start its third block.
KILLED_AFTER_TWO_BLOCKS = """
import os, signal, sys
from distill import cache_logits, teacher_logits

real_block_logits, blocks = teacher_logits.block_logits, []

def block_logits(*args):
    if len(blocks) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    blocks.append(args)
    return real_block_logits(*args)

teacher_logits.block_logits = block_logits
cache_logits.main(sys.argv[1:])
"""


def test_a_killed_run_resumes_without_recomputing_done_blocks(
    teachers: dict[str, Path], data: list[Path], bert_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "cache"
    command = [sys.executable, "-c", KILLED_AFTER_TWO_BLOCKS, *argv([teachers["bert"]], data, output, *AUGMENT)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert read_cache_info(output)["complete"] is False
    assert json.loads((output / teacher_logits.PROGRESS_DIR / "process-0.json").read_text())["done"] == [0, 1]

    rows = read_cache_info(output)["rows"]
    assert rows > 4 * BLOCK, "too few blocks to test resuming"
    block_starts = [example.text for i, example in enumerate(CachedExamples(output)) if i % BLOCK == 0]
    computed: list[str] = []  # the first text of each block the teacher runs on
    real_block_logits = teacher_logits.block_logits

    def block_logits(accelerator: Any, teachers: Any, texts: list[str], *args: Any) -> np.ndarray:
        computed.append(texts[0])
        return real_block_logits(accelerator, teachers, texts, *args)

    monkeypatch.setattr(teacher_logits, "block_logits", block_logits)
    main(argv([teachers["bert"]], data, output, *AUGMENT))
    assert computed == block_starts[2:]  # blocks 2.. only, each once
    for name in ["examples.tsv", "offsets.npy", "logits.npy"]:
        assert filecmp.cmp(output / name, bert_cache / name, shallow=False), name
    assert read_cache_info(output) == read_cache_info(bert_cache)
    assert not (output / teacher_logits.PROGRESS_DIR).exists()


def test_two_processes_write_the_same_cache_as_one(
    teachers: dict[str, Path], data: list[Path], bert_cache: Path, tmp_path: Path
) -> None:
    # As in test_finetune_trainer: torchrun through --multi_gpu with ACCELERATE_USE_CPU starts two gloo processes.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    output = tmp_path / "cache"
    command = [*TWO_CPU_PROCESSES, "-m", "distill.cache_logits", *argv([teachers["bert"]], data, output, *AUGMENT)]
    result = subprocess.run(
        command, env={**env, "ACCELERATE_USE_CPU": "true"}, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" rows, 1 teacher(s), ") == 1  # said once, by the main process
    assert "blocks of 4, 0 done, 2 processes" in result.stderr
    one, two = cached(bert_cache), cached(output)
    assert [e.key for e in CachedExamples(output)] == [e.key for e in CachedExamples(bert_cache)]
    for key, (example, logits) in two.items():
        assert example == one[key][0]
        np.testing.assert_allclose(logits, one[key][1], atol=1e-6)
    assert read_cache_info(output) == read_cache_info(bert_cache)


def test_bad_inputs_stop_before_any_teacher_runs(teachers: dict[str, Path], data: list[Path], tmp_path: Path) -> None:
    bad_label = tmp_path / "labels" / "train.tsv"
    bad_label.parent.mkdir()
    bad_label.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t보통\t2\n", encoding="utf-8")
    malformed = tmp_path / "malformed" / "train.tsv"
    malformed.parent.mkdir()
    malformed.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t이 줄은 라벨이 없다\n", encoding="utf-8")
    twin = tmp_path / "twin" / "reviews.txt"
    twin.parent.mkdir()
    twin.write_text("또 다른 리뷰\n", encoding="utf-8")
    output = tmp_path / "cache"
    bert = teachers["bert"]
    cases = {
        f"{bad_label}:3: label 2, but teacher {bert} has 2 labels": argv([bert], [bad_label], output),
        f"teacher {teachers['three']} has 3 labels, teacher {bert} 2": argv([bert, teachers["three"]], data, output),
        "have the same file name 'reviews.txt'": argv([bert], [*data, twin], output),
        f"{malformed}:3: expected 3 tab-separated columns": argv([bert], [malformed], output),
        f"no such folder: {tmp_path / 'missing'}": argv([tmp_path / "missing"], data, output),
        f"teacher {teachers['masked_lm']} is not a fine-tuned sequence classifier": argv(
            [teachers["masked_lm"]], data, output
        ),
    }
    for expected, args in cases.items():
        assert expected in stopped(args)
        assert not output.exists()


def test_a_failed_overwrite_leaves_the_cache_as_it_was(
    teachers: dict[str, Path], data: list[Path], bert_cache: Path, tmp_path: Path
) -> None:
    output = tmp_path / "cache"
    shutil.copytree(bert_cache, output)
    before = folder_snapshot(output)
    malformed = tmp_path / "train.tsv"
    malformed.write_text("id\tdocument\tlabel\n1\t좋다\tpositive\n", encoding="utf-8")
    message = stopped([*argv([teachers["bert"]], [malformed], output), "--overwrite"])
    assert f"{malformed}:2: the label must be a non-negative integer" in message
    assert folder_snapshot(output) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "train.tsv"]  # no staging folder left
