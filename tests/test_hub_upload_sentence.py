"""hub_upload of a sentence encoder: the release folder loads with sentence-transformers, the card has the Hub's
sentence-similarity metadata and the STS table of sentence.evaluate, and its plain-transformers code, run as
printed, gives sentence-transformers' vectors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from sentence_transformers import SentenceTransformer
from test_sentence import sts_pairs, write_korsts

from hub_upload.__main__ import main, validate
from hub_upload.sentence_card import EXAMPLE
from sentence.evaluate import EvaluateArguments, evaluate_encoders
from sentence.model import load_encoder

REPO_ID = "me/distilkobert-sentence"
SENTENCES = ["한 남자가 음식을 먹는다.", "남자가 말을 탄다."]


@pytest.fixture(scope="module")
def encoder_and_scores(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A sentence-transformers folder (the tiny DistilBERT, mean pooling) and its sentence.evaluate output beside
    another model's row."""
    tmp_path = tmp_path_factory.mktemp("sentence-release")
    folder = tmp_path / "student" / "best"
    load_encoder(str(models["distilbert"]), max_seq_length=32).save(str(folder))
    other = tmp_path / "teacher" / "best"
    load_encoder(str(models["bert"]), max_seq_length=32).save(str(other))
    scores = tmp_path / "evaluation.json"
    data = write_korsts(tmp_path / "sts-dev.tsv", sts_pairs())
    models = [str(other), str(folder)]
    options = EvaluateArguments(model_name_or_path=models, data=[str(data)], repeats=1, output_file=str(scores))
    evaluate_encoders(options)
    return folder, scores


def release(folder: Path, scores: Path, output: Path) -> None:
    main(
        [
            "--model_name_or_path",
            str(folder),
            "--repo_id",
            REPO_ID,
            "--results_files",
            str(scores),
            "--dry_run",
            "--output_dir",
            str(output),
        ]
    )


@pytest.fixture(scope="module")
def released(encoder_and_scores: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The dry-run release folder of the encoder and its card."""
    folder, scores = encoder_and_scores
    output = tmp_path_factory.mktemp("sentence-released") / "release"
    release(folder, scores, output)
    return output, (output / "README.md").read_text(encoding="utf-8")


def card_metadata(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


def test_a_sentence_encoder_release_loads_and_its_card_has_the_sts_table(
    encoder_and_scores: tuple[Path, Path], released: tuple[Path, str]
) -> None:
    (folder, scores), (output, card) = encoder_and_scores, released
    assert {"modules.json", "1_Pooling", "tokenization_kobert.py", "tokenizer_78b3253a26.model"} <= {
        p.name for p in output.iterdir()
    }
    expected = SentenceTransformer(str(folder), device="cpu").encode(SENTENCES)
    released = SentenceTransformer(str(output), device="cpu", trust_remote_code=True).encode(SENTENCES)
    np.testing.assert_allclose(released, expected, atol=1e-6)

    meta = card_metadata(card)
    assert (meta["pipeline_tag"], meta["library_name"]) == ("sentence-similarity", "sentence-transformers")
    row = next(r for r in json.loads(scores.read_text())["rows"] if r["model_dir"] == str(folder))
    metrics = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {
        "spearman_cosine": row["scores"]["sts-dev"]["spearman"],
        "pearson_cosine": row["scores"]["sts-dev"]["pearson"],
    }
    assert f"| **{REPO_ID}** |" in card and "| teacher |" in card  # this model and the other row, by run name
    assert "SentenceTransformer(" in card


def test_the_cards_plain_transformers_code_gives_the_sentence_transformers_vectors(released: tuple[Path, str]) -> None:
    output, card = released
    code = re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)[1].replace(REPO_ID, str(output))
    namespace: dict = {}
    exec(code.replace("print(", "(lambda *a: None)("), namespace)  # the card's code as a user pastes it
    encoder = SentenceTransformer(str(output), device="cpu", trust_remote_code=True)
    expected = encoder.encode(EXAMPLE, normalize_embeddings=True)
    np.testing.assert_allclose(namespace["embeddings"].numpy(), expected, atol=1e-5)


def test_sentence_results_that_are_not_an_evaluation_of_this_model_are_refused(
    encoder_and_scores: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, scores = encoder_and_scores
    training = tmp_path / "results.json"
    training.write_text(json.dumps({"command": "sentence.sts", "dev": {"spearman": 50.0}}))
    with pytest.raises(SystemExit, match=r"not a sentence\.evaluate --output_file"):
        release(folder, training, tmp_path / "a")
    record = json.loads(scores.read_text())
    record["rows"] = [row for row in record["rows"] if row["model_dir"] != str(folder)]
    others = tmp_path / "others.json"
    others.write_text(json.dumps(record))
    with pytest.raises(SystemExit, match="no row of"):
        release(folder, others, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_validation_fails_when_sentence_transformers_and_the_cards_pooling_disagree(
    encoder_and_scores: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, _ = encoder_and_scores
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    pooling = broken / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "pooling_mode": "max"}))
    with pytest.raises(ValueError, match="SentenceTransformer loads it and gives the plain-transformers vectors"):
        validate(broken)
