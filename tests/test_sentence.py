"""sentence/: the SimCSE and STS objectives against hand computations, the correlations against scipy, the training
commands end to end on tiny made-up pairs, and the saved folder loaded by sentence-transformers in a fresh process."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from common.readers import read_sts
from sentence import evaluate, simcse, sts
from sentence.embedding_losses import embedding_distillation_loss, simcse_loss
from sentence.model import load_encoder

ROOT = Path(__file__).resolve().parent.parent

# Made-up pairs: a sentence, a paraphrase, a related and an unrelated one, with the scores a rater might give.
SUBJECTS = ["남자가", "여자가", "아이가", "강아지가", "고양이가", "학생이", "노인이", "가수가"]
ACTIONS = ["춤을 추고 있다.", "기타를 치고 있다.", "밥을 먹고 있다.", "공원을 달리고 있다.", "책을 읽고 있다."]


def sts_pairs() -> list[tuple[float, str, str]]:
    pairs = []
    for i, subject in enumerate(SUBJECTS):
        action, other = ACTIONS[i % len(ACTIONS)], ACTIONS[(i + 2) % len(ACTIONS)]
        pairs += [
            (5.0, f"한 {subject} {action}", f"{subject} {action}"),
            (3.2, f"한 {subject} {action}", f"{SUBJECTS[i - 1]} {action}"),
            (1.4, f"한 {subject} {action}", f"{subject} {other}"),
            (0.0, f"한 {subject} {action}", f"{SUBJECTS[i - 3]} {other}"),
        ]
    return pairs


def write_korsts(path: Path, pairs: list[tuple[float, str, str]]) -> Path:
    lines = ["genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2"]
    lines += [
        f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score:.3f}\t{a}\t{b}" for i, (score, a, b) in enumerate(pairs)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_kornli(path: Path, with_contradictions: bool = True) -> Path:
    lines = ["sentence1\tsentence2\tgold_label"]
    for i, subject in enumerate(SUBJECTS):
        action = ACTIONS[i % len(ACTIONS)]
        premise = f"{subject} {action}"
        lines += [f"{premise}\t누군가 {action}\tentailment", f"{premise}\t{subject} 자고 있다.\tneutral"]
        if with_contradictions:
            lines.append(f"{premise}\t아무도 {action[:-5]}지 않는다.\tcontradiction")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the objectives, on hand-computed tensors ---------------------------------------------------------------------


def softmax_cross_entropy(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(value) for value in logits))


def test_simcse_loss_is_the_cross_entropy_over_in_batch_and_hard_negatives_at_the_temperature() -> None:
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    negatives = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    # Cosines by hand: row i = (anchor i against positive 0, positive 1, negative 0, negative 1); the target is i.
    cosines = [[1 / math.sqrt(2), 0.0, -1.0, 1.0], [1 / math.sqrt(2), 1.0, 0.0, 0.0]]
    for temperature in (0.05, 1.0):
        expected = (
            sum(softmax_cross_entropy([c / temperature for c in row], target) for target, row in enumerate(cosines)) / 2
        )
        loss = simcse_loss(None, temperature, gather_across_devices=False)
        assert loss.compute_loss_from_embeddings([anchors, positives, negatives], None).item() == pytest.approx(
            expected, rel=1e-5
        )
        # Without hard negatives the candidates are the batch's positives alone.
        in_batch = (
            sum(softmax_cross_entropy([c / temperature for c in row[:2]], target) for target, row in enumerate(cosines))
            / 2
        )
        assert loss.compute_loss_from_embeddings([anchors, positives], None).item() == pytest.approx(
            in_batch, rel=1e-5, abs=1e-6
        )


def test_simcse_loss_refuses_a_temperature_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="temperature must be positive"):
        simcse_loss(None, 0.0, gather_across_devices=False)


def test_embedding_distillation_loss_is_the_mse_or_cosine_distance_to_the_teacher(models: dict[str, Path]) -> None:
    encoder = load_encoder(str(models["distilbert"]), max_seq_length=16)
    student = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    teacher = torch.tensor([[0.0, 2.0], [3.0, 1.0]])
    squared = [(1 - 0) ** 2 + (2 - 2) ** 2, (0 - 3) ** 2 + (-1 - 1) ** 2]  # 1, 13
    mse = embedding_distillation_loss(encoder, encoder.get_embedding_dimension(), "mse")
    assert mse.compute_loss_from_embeddings([student], [teacher]).item() == pytest.approx(sum(squared) / 4)
    cosine = embedding_distillation_loss(encoder, encoder.get_embedding_dimension(), "cosine")
    cosines = [4 / (math.sqrt(5) * 2), -1 / (1 * math.sqrt(10))]
    assert cosine.compute_loss_from_embeddings([student], [teacher]).item() == pytest.approx(
        sum(1 - c for c in cosines) / 2, rel=1e-5
    )
    # similarity: the MSE of the cosine matrices, by hand: cos(s1, s2) = -2 / sqrt(5), cos(t1, t2) = 1 / sqrt(10)
    similarity = embedding_distillation_loss(encoder, 48, "similarity")  # any teacher dimension, no projection
    off_diagonal = (-2 / math.sqrt(5) - 1 / math.sqrt(10)) ** 2
    assert similarity.compute_loss_from_embeddings([student], [teacher]).item() == pytest.approx(2 * off_diagonal / 4)
    projected = embedding_distillation_loss(encoder, 48, "mse")
    assert projected.projection is not None and projected.projection.out_features == 48
    with pytest.raises(ValueError, match="unknown distance 'l1'"):
        embedding_distillation_loss(encoder, 48, "l1")


# --- correlations -------------------------------------------------------------------------------------------------


def test_sts_correlations_are_scipys_spearman_and_pearson_of_the_cosines_times_100(
    models: dict[str, Path], tmp_path: Path
) -> None:
    encoder = load_encoder(str(models["bert"]), max_seq_length=32)
    pairs = sts_pairs()
    records = [{"sentence1": a, "sentence2": b, "score": score} for score, a, b in pairs]
    first = encoder.encode([a for _, a, _ in pairs])
    second = encoder.encode([b for _, _, b in pairs])
    cosines = (first * second).sum(1) / np.linalg.norm(first, axis=1) / np.linalg.norm(second, axis=1)
    gold = [score for score, _, _ in pairs]
    scores = evaluate.sts_correlations(encoder, records, "toy")
    assert scores["spearman"] == pytest.approx(100 * spearmanr(cosines, gold).statistic, abs=0.006)
    assert scores["pearson"] == pytest.approx(100 * pearsonr(cosines, gold).statistic, abs=0.006)


# --- SimCSE rows from NLI records ---------------------------------------------------------------------------------


def test_simcse_rows_pair_each_entailment_with_a_contradiction_of_the_same_premise() -> None:
    records = [
        {"premise": "p1", "hypothesis": "e1", "label": "entailment"},
        {"premise": "p1", "hypothesis": "e2", "label": "entailment"},
        {"premise": "p1", "hypothesis": "c1", "label": "contradiction"},
        {"premise": "p1", "hypothesis": "n1", "label": "neutral"},
        {"premise": "p2", "hypothesis": "e3", "label": "entailment"},  # no contradiction: no row
        {"premise": "p3", "hypothesis": "c2", "label": "contradiction"},  # no entailment: no row
    ]
    assert simcse.simcse_rows(records) == [
        {"anchor": "p1", "positive": "e1", "negative": "c1"},
        {"anchor": "p1", "positive": "e2", "negative": "c1"},
    ]
    without_contradictions = [r for r in records if r["label"] != "contradiction"]
    assert simcse.simcse_rows(without_contradictions) == [
        {"anchor": "p1", "positive": "e1"},
        {"anchor": "p1", "positive": "e2"},
        {"anchor": "p2", "positive": "e3"},
    ]
    # contradictions, but never of a premise with an entailment: the entailment pairs still train
    contradicted_apart = [r for r in records if r["hypothesis"] != "c1"]
    assert simcse.simcse_rows(contradicted_apart) == simcse.simcse_rows(without_contradictions)


# --- the commands, end to end -------------------------------------------------------------------------------------

TINY = {"num_train_epochs": 2, "per_device_train_batch_size": 8, "eval_steps": 4, "max_seq_length": 32}
TINY_TRAINING = [
    "--num_train_epochs",
    "2",
    "--per_device_train_batch_size",
    "8",
    "--eval_steps",
    "4",
    "--max_seq_length",
    "32",
]


@pytest.fixture(scope="module")
def sts_run(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("sts")
    train = write_korsts(root / "train.tsv", sts_pairs())
    dev = write_korsts(root / "dev.tsv", sts_pairs()[::3])
    output = root / "run"
    options = {
        "model_name_or_path": str(models["distilbert"]),
        "train_file": str(train),
        "test_file": str(dev),
        "output_dir": str(output),
    }
    returned = sts.train_sts(sts.StsArguments(**options, **TINY))
    argv = [arg for name, value in options.items() for arg in (f"--{name}", value)]
    return {"output": output, "dev": dev, "argv": argv, "returned": returned}


def test_sts_training_writes_the_best_encoder_and_results(sts_run: dict) -> None:
    output = sts_run["output"]
    results = json.loads((output / "results.json").read_text(encoding="utf-8"))
    assert sts_run["returned"] == results  # what the typed function returns is what it wrote
    assert results["command"] == "sentence.sts"
    assert results["examples"] == {"train": 29, "silver": 0, "validation": 3, "dev": 11}
    assert results["pooling"] == "mean" and results["embedding_dimension"] == 32
    assert set(results["dev"]) == {"spearman", "pearson"}
    assert -100 <= results["dev"]["spearman"] <= 100
    assert list(results["validation"]) == ["eval_validation_spearman_cosine"]
    assert results["steps"] == 8  # 29 pairs in batches of 8 (the last one short), 2 epochs
    assert (output / "best" / "modules.json").exists()
    # The reported dev score is the saved encoder's.
    again = evaluate.sts_correlations(
        load_encoder(str(output / "best"), max_seq_length=None), read_sts(str(sts_run["dev"])), "dev"
    )
    assert again == results["dev"]


def test_the_saved_encoder_loads_with_sentence_transformers_in_a_fresh_process(sts_run: dict, tmp_path: Path) -> None:
    best = sts_run["output"] / "best"
    sentences = ["한 남자가 춤을 추고 있다.", "고양이가 책을 읽고 있다."]
    ours = load_encoder(str(best), max_seq_length=None).encode(sentences)
    script = (
        "import sys, numpy\n"
        "from sentence_transformers import SentenceTransformer\n"
        "for trust in (False, True):\n"
        "    model = SentenceTransformer(sys.argv[1], device='cpu', trust_remote_code=trust)\n"
        "    numpy.save(sys.argv[2] + f'-{trust}.npy', model.encode(sys.argv[3:]))\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(best), str(tmp_path / "vectors"), *sentences],
        check=True,
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"},
    )
    for trust in (False, True):  # KoBERT's tokenizer.json without remote code, KoBertTokenizerFast with it
        np.testing.assert_allclose(np.load(tmp_path / f"vectors-{trust}.npy"), ours, atol=1e-6)


def test_sts_resumes_from_its_last_checkpoint(sts_run: dict) -> None:
    output = sts_run["output"]
    with pytest.raises(SystemExit):  # a finished run's folder is not silently replaced
        sts.main(sts_run["argv"] + TINY_TRAINING)
    cut_short = output / "checkpoints" / "checkpoint-10"  # a kill while saving: a 0-byte file, no trainer state
    cut_short.mkdir()
    (cut_short / "model.safetensors").write_bytes(b"")
    sts.main(sts_run["argv"] + TINY_TRAINING + ["--resume", "--num_train_epochs", "3"])
    results = json.loads((output / "results.json").read_text(encoding="utf-8"))
    assert results["resumed_from"].endswith("checkpoint-8") and results["steps"] == 12
    assert not cut_short.exists()


def test_simcse_trains_on_triples_with_hard_negatives(models: dict[str, Path], tmp_path: Path) -> None:
    nli = write_kornli(tmp_path / "nli.tsv")
    output = tmp_path / "simcse"
    simcse.main(
        [
            "--model_name_or_path",
            str(models["bert"]),
            "--nli",
            str(nli),
            "--output_dir",
            str(output),
            "--pooling",
            "cls",
            *TINY_TRAINING,
            "--validation_split",
            "0.25",
        ]
    )
    results = json.loads((output / "results.json").read_text(encoding="utf-8"))
    assert results["examples"] == {
        "nli_records": 24,
        "train": 6,
        "validation": 2,
        "hard_negatives": True,
        "negatives_across_processes": False,
    }
    assert results["pooling"] == "cls" and results["dev"] is None
    assert list(results["validation"]) == ["eval_loss"]


def test_simcse_without_contradictions_trains_on_pairs_and_warns(
    models: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nli = write_kornli(tmp_path / "nli.tsv", with_contradictions=False)
    output = tmp_path / "simcse"
    simcse.train_simcse(
        simcse.SimcseArguments(
            model_name_or_path=str(models["distilbert"]),
            nli=[str(nli)],
            output_dir=str(output),
            **{**TINY, "num_train_epochs": 1},
            validation_split=0.25,
        )
    )
    assert "has both an entailment and a contradiction" in caplog.text
    assert json.loads((output / "results.json").read_text(encoding="utf-8"))["examples"]["hard_negatives"] is False


def test_a_bad_score_stops_sts_before_training_naming_the_file_and_line(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pairs = sts_pairs()
    pairs[2] = (5.5, pairs[2][1], pairs[2][2])
    train = write_korsts(tmp_path / "train.tsv", pairs)
    argv = ["--model_name_or_path", str(models["distilbert"]), "--train_file", str(train), "--test_file", str(train)]
    with pytest.raises(SystemExit, match=rf"{train}.*4.*5\.5"):
        sts.main([*argv, "--output_dir", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()
    # The typed function says the same as a ValueError, for a caller to handle.
    options = {"model_name_or_path": str(models["distilbert"]), "train_file": str(train), "test_file": str(train)}
    with pytest.raises(ValueError, match=rf"{train}.*4.*5\.5"):
        sts.train_sts(sts.StsArguments(**options, output_dir=str(tmp_path / "typed")))
    assert not (tmp_path / "typed").exists()


def test_evaluate_prints_the_table_of_every_model(
    sts_run: dict, models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    best = str(sts_run["output"] / "best")
    evaluate.main(
        [
            "--model_name_or_path",
            best,
            str(models["bert"]),
            "--data",
            str(sts_run["dev"]),
            "--repeats",
            "1",
            "--output_file",
            str(tmp_path / "evaluation.json"),
        ]
    )
    rows = json.loads((tmp_path / "evaluation.json").read_text())["rows"]
    table = capsys.readouterr().out.splitlines()
    assert table == evaluate.markdown_table(rows).splitlines()  # the rows it printed are those it wrote
    assert table[0].startswith("| model | parameters | encoding | dev Spearman / Pearson | sentences/s (batch 1) |")
    assert len(table) == 4 and table[2].startswith(f"| {best} | ") and "mean pooling" in table[2]
    assert rows[0]["scores"]["dev"] == json.loads((sts_run["output"] / "results.json").read_text())["dev"]
    assert rows[1]["params"] > 0 and rows[1]["sentences_per_s_b64"] > 0
    # The typed function returns the rows (the speeds are measured anew) and writes no file unless asked.
    typed = evaluate.evaluate_encoders(
        evaluate.EvaluateArguments(model_name_or_path=[best], data=[str(sts_run["dev"])], repeats=1)
    )
    assert typed[0]["scores"] == rows[0]["scores"] and typed[0]["params"] == rows[0]["params"]


def test_distill_caches_the_teacher_once_and_trains_the_student_towards_it(
    sts_run: dict, models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentence import distil_embeddings, embedding_distillation
    from sentence.distil_embeddings import EmbeddingDistillationArguments

    teacher = str(tmp_path / "teacher")  # a BERT with mean pooling, 32 dimensions
    load_encoder(str(models["bert"]), max_seq_length=32).save(teacher)
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("\n".join(f"{a} 정말 재밌어요" for _, a, _ in sts_pairs()) + "\n\n", encoding="utf-8")
    sentences = [str(sts_run["dev"]), str(corpus)]
    argv = ["--teacher_name_or_path", teacher, "--sentences", *sentences, *TINY_TRAINING, "--num_train_epochs", "1"]
    distil_embeddings.main(
        [*argv, "--student_name_or_path", str(models["distilbert"]), "--output_dir", str(tmp_path / "first")]
    )
    cache = tmp_path / "first" / "teacher-embeddings"
    info = json.loads((cache / "cache.json").read_text(encoding="utf-8"))
    assert info["count"] == 2 * 11 + 32  # both sentences of the 11 dev pairs, then the corpus' non-empty lines
    # The cache holds the teacher's embeddings of those sentences, in order.
    texts = [t for _, a, b in sts_pairs()[::3] for t in (a, b)] + [f"{a} 정말 재밌어요" for _, a, _ in sts_pairs()]
    expected = load_encoder(teacher, max_seq_length=32).encode(texts)
    np.testing.assert_allclose(np.load(cache / "embeddings.npy"), expected, atol=1e-5)
    # Each training row pairs a sentence with its own teacher embedding, across files and under --max_sentences.
    limited = EmbeddingDistillationArguments(
        teacher_name_or_path=teacher,
        sentences=sentences,
        student_name_or_path="s",
        max_sentences=40,
        output_dir=str(tmp_path / "x"),
    )
    rows = embedding_distillation.distillation_dataset(limited, cache, info)
    assert rows["sentence"] == texts[:40]
    np.testing.assert_allclose(np.array(rows["label"]), expected[:40], atol=1e-5)

    # A second student from the same cache: the teacher is never run again.
    def no_teacher(*args: object) -> None:
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(embedding_distillation, "teacher_embeddings", no_teacher)
    second = tmp_path / "second"
    returned = distil_embeddings.distil_embeddings(
        EmbeddingDistillationArguments(
            teacher_name_or_path=teacher,
            sentences=sentences,
            **{**TINY, "num_train_epochs": 1},
            student_layers=[0],
            cache_dir=str(cache),
            output_dir=str(second),
        )
    )
    results = json.loads((second / "results.json").read_text(encoding="utf-8"))
    assert returned == results
    assert results["examples"] == {"sentences": 54, "train": 49, "validation": 5}
    assert results["embedding_dimension"] == 32 and results["pooling"] == "mean"
    student_config = json.loads((second / "best" / "config.json").read_text(encoding="utf-8"))
    assert student_config["model_type"] == "distilbert" and student_config["n_layers"] == 1

    # A cache of other sentences is refused, naming what differs.
    with pytest.raises(SystemExit, match="another sentences"):
        distil_embeddings.main(
            [
                *argv[:2],
                "--sentences",
                str(corpus),
                *TINY_TRAINING,
                "--student_name_or_path",
                str(models["distilbert"]),
                "--cache_dir",
                str(cache),
                "--output_dir",
                str(tmp_path / "third"),
            ]
        )
    # Layers are copied from a BERT only.
    with pytest.raises(SystemExit, match=r"copies the layers of a BERT, but the teacher .* is a distilbert"):
        distil_embeddings.main(
            [
                "--teacher_name_or_path",
                str(second / "best"),
                "--sentences",
                str(corpus),
                "--student_layers",
                "0",
                "--output_dir",
                str(tmp_path / "fourth"),
            ]
        )
    # A student is given one way: a folder or the teacher's layers, not both (nor neither), before anything runs.
    for student in ({}, {"student_name_or_path": "s", "student_layers": [0]}):
        with pytest.raises(ValueError, match=r"--student_name_or_path .* or as --student_layers"):
            EmbeddingDistillationArguments(
                teacher_name_or_path=teacher, sentences=[str(corpus)], output_dir=str(tmp_path / "fifth"), **student
            ).validate()


def test_a_cross_encoder_teacher_labels_silver_pairs_the_bi_encoder_trains_on_beside_the_gold(
    sts_run: dict, models: dict[str, Path], tmp_path: Path
) -> None:
    from sentence import cross_encoder, silver
    from sentence.model import load_cross_encoder

    train = write_korsts(tmp_path / "train.tsv", sts_pairs())
    teacher = tmp_path / "cross-encoder"
    cross_encoder.main(
        [
            "--model_name_or_path",
            str(models["bert"]),
            "--train_file",
            str(train),
            "--test_file",
            str(sts_run["dev"]),
            "--output_dir",
            str(teacher),
            *TINY_TRAINING,
        ]
    )
    results = json.loads((teacher / "results.json").read_text(encoding="utf-8"))
    assert results["pooling"] == "cross-encoder" and list(results["validation"]) == ["eval_validation_spearman"]

    for sampler in ("random", "neighbours"):
        output = tmp_path / f"silver-{sampler}.tsv"
        silver.main(
            [
                "--cross_encoder_name_or_path",
                str(teacher / "best"),
                "--sentences",
                str(train),
                "--sampler",
                sampler,
                "--encoder_name_or_path",
                str(sts_run["output"] / "best"),
                "--pairs_per_sentence",
                "2",
                "--output_file",
                str(output),
            ]
        )
        pairs = read_sts(str(output))
        keys = {frozenset((p["sentence1"], p["sentence2"])) for p in pairs}
        assert len(keys) == len(pairs) and all(p["sentence1"] != p["sentence2"] for p in pairs)
        # The silver scores are the cross-encoder's, times 5.
        predicted = load_cross_encoder(str(teacher / "best"), 32).predict(
            [(p["sentence1"], p["sentence2"]) for p in pairs]
        )
        np.testing.assert_allclose([p["score"] for p in pairs], 5 * predicted, atol=1e-3)

    student = tmp_path / "augmented"
    sts.main(
        [
            "--model_name_or_path",
            str(models["distilbert"]),
            "--train_file",
            str(train),
            "--silver",
            str(output),
            "--test_file",
            str(sts_run["dev"]),
            "--output_dir",
            str(student),
            *TINY_TRAINING,
            "--num_train_epochs",
            "1",
        ]
    )
    examples = json.loads((student / "results.json").read_text(encoding="utf-8"))["examples"]
    assert examples == {"train": 29 + len(pairs), "silver": len(pairs), "validation": 3, "dev": 11}


def test_hub_datasets_with_configs_give_their_pairs_and_sentences(tmp_path: Path) -> None:
    """A dataset with an ``sts`` and an ``nli`` config (as kakaobrain/kor_nlu and klue/klue have), in a local folder
    laid out as on the Hub (parquet files named by the README's ``configs``), read as NAME:CONFIG:SPLIT."""
    import datasets
    import yaml

    from common.readers import read_nli
    from sentence.embedding_distillation import source_fingerprint
    from sentence.pairs import sentences

    folder = tmp_path / "kor_nlu"
    (folder / "sts").mkdir(parents=True)
    (folder / "nli").mkdir()
    sts_file, nli_file = write_korsts(tmp_path / "sts.tsv", sts_pairs()), write_kornli(tmp_path / "nli.tsv")
    datasets.Dataset.from_list(read_sts(str(sts_file))).to_parquet(folder / "sts" / "validation.parquet")
    nli_rows = [
        {**r, "label": ["entailment", "neutral", "contradiction"].index(r["label"])} for r in read_nli(str(nli_file))
    ]
    datasets.Dataset.from_list(nli_rows).to_parquet(folder / "nli" / "train.parquet")
    configs = [
        {"config_name": "sts", "data_files": [{"split": "validation", "path": "sts/validation.parquet"}]},
        {"config_name": "nli", "data_files": [{"split": "train", "path": "nli/train.parquet"}]},
    ]
    (folder / "README.md").write_text("---\n" + yaml.safe_dump({"configs": configs}) + "---\n", encoding="utf-8")

    assert read_sts(f"{folder}:sts:validation") == read_sts(str(sts_file))
    assert read_nli(f"{folder}:nli:train") == read_nli(str(nli_file))
    assert list(sentences([f"{folder}:sts:validation"], None)) == list(sentences([str(sts_file)], None))
    assert list(sentences([f"{folder}:nli:train"], 4)) == list(sentences([str(nli_file)], 4))
    with pytest.raises(ValueError, match="NAME, NAME:SPLIT or NAME:CONFIG:SPLIT"):
        read_sts(f"{folder}:sts:validation:extra")
    # The teacher-embedding cache knows a Hub dataset by the sentences it gives.
    expected = hashlib.sha256("".join(f"{s}\n" for s in sentences([str(sts_file)], None)).encode()).hexdigest()
    assert source_fingerprint(f"{folder}:sts:validation") == expected != source_fingerprint(f"{folder}:nli:train")


def test_weights_a_folder_lacks_are_the_same_in_every_run(models: dict[str, Path]) -> None:
    # A masked LM has no pooler, and a cross-encoder's head is new: each was drawn from the global random state, so
    # two runs of one command saved different models (the killed-and-resumed probe of issue 32 found it).
    from sentence.model import load_cross_encoder

    def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(1)
    first, first_cross = state(load_encoder(str(models["bert"]))), state(load_cross_encoder(str(models["bert"]), 32))
    before = torch.random.get_rng_state()
    second, second_cross = state(load_encoder(str(models["bert"]))), state(load_cross_encoder(str(models["bert"]), 32))
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's random state is left alone
    for a, b in ((first, second), (first_cross, second_cross)):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
