"""The sentence-encoder recipe: a teacher bi-encoder (SimCSE on NLI, then STS), a student distilled from its
embeddings and then fine-tuned on STS, and the same student on STS alone, scored and timed side by side; with
``teacher_type: [bi-encoder, cross-encoder]``, also a cross-encoder teacher trained on the gold pairs and a student
trained on the gold pairs plus the silver pairs it scored (Augmented SBERT).

    python -m reproduce --preset sentence-mini --output_dir runs/sentence-mini

A preset with ``pipeline: sentence`` (``reproduce/presets/sentence-mini.yaml``) names where the teacher and the
student start: folders or Hub ids (``teacher``, ``student``), or ``base: PRESET``, the main recipe's preset whose
pretrained teacher and distilled student they are (its tokenizer, data, teacher and distilled stages run first,
into the same output folder, and are skipped when already done; ``base_set`` changes the base preset as ``--set``
does). Each stage calls its command's typed function with its options class (``sentence.sts.train_sts`` with
``StsArguments``, ...), made from the preset's section for it, and checked before the first stage runs. The stages
run through ``reproduce.stages``' runner: a stage whose inputs are unchanged is skipped, a failing one is named and
the ones before it are kept.
Its stages write under OUTPUT/sentence/, beside the base recipe's folders; it ends with OUTPUT/sentence/results.json
(one object per model: ``teacher``, ``distilled``, ``cross_encoder``, ``augmented``, ``baseline``, those the teacher
types make) and results.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from common.config import config_from_dict, read_preset, save_config
from common.io import is_missing_file, write_json, write_text
from reproduce.preset import PRESET_MAPPING, apply_override, load_preset
from reproduce.stages import Recipe, Stage, file_stamps
from sentence.cross_encoder import CrossEncoderArguments, train_cross_encoder
from sentence.distil_embeddings import EmbeddingDistillationArguments, distil_embeddings
from sentence.evaluate import EvaluateArguments, data_name, evaluate_encoders
from sentence.silver import SilverArguments, label_silver_pairs
from sentence.simcse import SimcseArguments, train_simcse
from sentence.sts import StsArguments, train_sts

logger = logging.getLogger("reproduce")

Options = TypeVar("Options")

TEACHER_TYPES = ("bi-encoder", "cross-encoder")
STS_STAGES = ("teacher", "distilled", "augmented", "baseline")  # the stages sentence.sts trains, by folder name
ARGUMENTS_FILE = "arguments.yaml"  # a launched stage's options, which its command reads as --config
EVALUATION_FILE = "evaluation.json"
SPEED_KEYS = ("sentences_per_s_b1", "sentences_per_s_b64")
# Each model of the results: its teacher type (None: the baseline, in every run) and the row it learned from.
MODELS = {
    "teacher": ("bi-encoder", None),
    "distilled": ("bi-encoder", "teacher"),
    "cross_encoder": ("cross-encoder", None),
    "augmented": ("cross-encoder", "cross_encoder"),
    "baseline": (None, None),
}


@dataclass(frozen=True)
class StageCall:
    """What a stage runs: its command's typed function and options (and the command, for a launcher to run)."""

    module: str  # python -m MODULE --config FILE, under a launcher
    function: Callable[[Any], Any]
    arguments: Any


@dataclass
class SentencePreset:
    """One configuration of the sentence-encoder recipe; see ``reproduce/presets/sentence-mini.yaml``."""

    name: str = ""
    pipeline: str = "sentence"
    base: str = ""  # a main-recipe preset whose teacher/final and distilled/final are the starting points
    base_set: list[str] = field(default_factory=list)  # KEY=VALUE changes to the base preset, as --set makes them
    teacher: str = ""  # or a folder or Hub id the teacher starts from ...
    student: str = ""  # ... and one the student starts from
    nli: list[str] = field(default_factory=list)  # sentence.simcse's --nli files
    sts_train: str = ""  # KorSTS (or KLUE-STS) training pairs
    sts_dev: str = ""  # the pairs every model is scored on
    sentences: list[str] = field(default_factory=list)  # sentence.distil_embeddings's --sentences
    teacher_type: list[str] = field(default_factory=lambda: ["bi-encoder"])  # bi-encoder, cross-encoder or both
    # Each command's options (its options class's fields: num_train_epochs, per_device_train_batch_size, ...)
    simcse: dict[str, Any] = field(default_factory=dict)  # SimcseArguments
    sts: dict[str, Any] = field(default_factory=dict)  # StsArguments (all four STS stages)
    distill: dict[str, Any] = field(default_factory=dict)  # EmbeddingDistillationArguments
    evaluate: dict[str, Any] = field(default_factory=dict)  # EvaluateArguments (repeats)
    cross_encoder: dict[str, Any] = field(default_factory=dict)  # CrossEncoderArguments
    silver: dict[str, Any] = field(default_factory=dict)  # SilverArguments (the sts_train sentences paired)
    launcher: str = ""  # e.g. "accelerate launch --config_file cfg.yaml": training commands run through it

    def check(self) -> None:
        problems = []
        if isinstance(self.teacher_type, str):
            self.teacher_type = [self.teacher_type]
        if not self.teacher_type or set(self.teacher_type) - set(TEACHER_TYPES):
            problems.append(f"teacher_type {self.teacher_type!r}: expected one or both of {', '.join(TEACHER_TYPES)}")
        if self.base_set and not self.base:
            problems.append("base_set changes the base preset: give base too")
        if bool(self.base) == bool(self.teacher or self.student):
            problems.append("give base (a main-recipe preset), or teacher and student, not both")
        elif not self.base and not (self.teacher and self.student):
            problems.append("teacher and student are both needed without base")
        for name in ("nli", "sts_train", "sts_dev", "sentences"):
            if not getattr(self, name):
                problems.append(f"{name} is required")
        if problems:
            raise ValueError("invalid sentence preset:\n  - " + "\n  - ".join(problems))


def is_sentence_preset(path: Path) -> bool:
    return read_preset(path, PRESET_MAPPING).get("pipeline") == "sentence"


def load_sentence_preset(path: Path, overrides: list[str]) -> SentencePreset:
    """The preset file with ``--set KEY=VALUE`` overrides on top; unknown keys are errors."""
    values = read_preset(path, PRESET_MAPPING)
    for assignment in overrides:
        apply_override(values, assignment, SentencePreset)
    known = {f.name for f in dataclasses.fields(SentencePreset)}
    if unknown := sorted(set(values) - known):
        raise ValueError(f"{path}: unknown preset keys {unknown}; known keys: {', '.join(sorted(known))}")
    values.setdefault("name", path.stem)
    preset = SentencePreset(**values)
    preset.check()
    return preset


class SentenceRecipe:
    """The stages of one sentence preset under one output folder, in the order they run."""

    def __init__(self, preset: SentencePreset, output: Path) -> None:
        self.preset, self.output = preset, output
        p = preset
        sentence = output / "sentence"  # beside the base recipe's own teacher/, distilled/ and baseline/
        self.base = Recipe(load_preset(p.base, p.base_set), output) if p.base else None
        upstream = [self.base.teacher, self.base.distilled] if self.base else []
        # Starting folders are inputs by their files' stamps; the base recipe's models, by their stages' fingerprints.
        starts = {} if p.base else {"starts": file_stamps([f"{p.teacher}/*", f"{p.student}/*"])}
        sts_data = file_stamps([p.sts_train, p.sts_dev])
        # The bi-encoder teacher and its distilled student.
        self.simcse = Stage(
            "sentence-simcse",
            sentence / "simcse",
            {"simcse": p.simcse, "nli": file_stamps(p.nli), **starts},
            self.run_stage,
            depends_on=upstream,
        )
        self.teacher = Stage(
            "sentence-teacher",
            sentence / "teacher",
            {"sts": p.sts, "data": sts_data},
            self.run_stage,
            depends_on=[self.simcse],
        )
        self.distill = Stage(
            "sentence-distill",
            sentence / "distill",
            {"distill": p.distill, "sentences": file_stamps(p.sentences), **starts},
            self.run_stage,
            depends_on=[self.teacher, *upstream],
        )
        self.distilled = Stage(
            "sentence-distilled",
            sentence / "distilled",
            {"sts": p.sts, "data": sts_data},
            self.run_stage,
            depends_on=[self.distill],
        )
        # The cross-encoder teacher, its silver pairs and the student trained on gold and silver.
        self.cross_encoder = Stage(
            "sentence-cross-encoder",
            sentence / "cross_encoder",
            {"cross_encoder": p.cross_encoder, "data": sts_data, **starts},
            self.run_stage,
            depends_on=upstream,
        )
        self.silver = Stage(
            "sentence-silver",
            sentence / "silver",
            {"silver": p.silver},
            self.run_stage,
            depends_on=[self.cross_encoder],
        )
        self.augmented = Stage(
            "sentence-augmented",
            sentence / "augmented",
            {"sts": p.sts, "data": sts_data, **starts},
            self.run_stage,
            depends_on=[self.silver, *upstream],
        )
        self.baseline = Stage(
            "sentence-baseline",
            sentence / "baseline",
            {"sts": p.sts, "data": sts_data, **starts},
            self.run_stage,
            depends_on=upstream,
        )
        self.evaluation = Stage(
            "sentence-evaluate",
            sentence / "evaluate",
            {"evaluate": p.evaluate},
            self.run_stage,
            depends_on=[self.model_stage(name) for name in self.models],
        )

    @property
    def models(self) -> list[str]:
        """The results' rows, those the preset's teacher types make."""
        return [name for name, (kind, _) in MODELS.items() if kind is None or kind in self.preset.teacher_type]

    def model_stage(self, name: str) -> Stage:
        return getattr(self, name)

    @property
    def bi_encoders(self) -> list[str]:
        """The models sentence.evaluate scores and times (the cross-encoder scores pairs: its own results count)."""
        return [name for name in self.models if name != "cross_encoder"]

    @property
    def stages(self) -> list[Stage]:
        base = [self.base.tokenizer, self.base.data, self.base.teacher, self.base.distilled] if self.base else []
        kinds = self.preset.teacher_type
        bi = [self.simcse, self.teacher, self.distill, self.distilled] if "bi-encoder" in kinds else []
        cross = [self.cross_encoder, self.silver, self.augmented] if "cross-encoder" in kinds else []
        return [*base, *bi, *cross, self.baseline, self.evaluation]

    def start(self, model: str) -> str:
        """Where the teacher or the student starts: the preset's folder, or the base recipe's pretrained model."""
        if self.base:
            return str(self.base.model_dir("teacher" if model == "teacher" else "distilled"))
        return self.preset.teacher if model == "teacher" else self.preset.student

    def encoder(self, stage: Stage) -> str:
        return str(stage.folder / "best")

    @property
    def silver_file(self) -> Path:
        return self.silver.folder / "silver.tsv"

    # Each stage's options, made (and checked) at start-up too, to catch what a command refuses before any work.
    def arguments(
        self, options_class: type[Options], section: str, given: dict[str, Any], output: dict[str, Any]
    ) -> Options:
        """A stage's options: what the recipe gives, the preset section's values over them, then where it writes;
        ValueError naming the preset section when its command refuses them."""
        values = {**given, **getattr(self.preset, section), **output}
        return config_from_dict(options_class, values, f"preset section {section!r}")

    @staticmethod
    def training_output(stage: Stage) -> dict[str, Any]:
        """A training stage writes into its own folder, which the runner has made (its stage files are in it)."""
        return {"output_dir": str(stage.folder), "overwrite": True}

    def simcse_arguments(self) -> SimcseArguments:
        given = {"model_name_or_path": self.start("teacher"), "nli": self.preset.nli, "test_file": self.preset.sts_dev}
        return self.arguments(SimcseArguments, "simcse", given, self.training_output(self.simcse))

    def sts_arguments(self, name: str) -> StsArguments:
        start = {"teacher": self.encoder(self.simcse), "distilled": self.encoder(self.distill)}
        given = {"model_name_or_path": start.get(name, self.start("student")), "train_file": self.preset.sts_train}
        if name == "augmented":
            given["silver"] = [str(self.silver_file)]
        given["test_file"] = self.preset.sts_dev
        return self.arguments(StsArguments, "sts", given, self.training_output(self.model_stage(name)))

    def distill_arguments(self) -> EmbeddingDistillationArguments:
        given = {"teacher_name_or_path": self.encoder(self.teacher), "student_name_or_path": self.start("student")}
        given |= {"sentences": self.preset.sentences, "test_file": self.preset.sts_dev}
        return self.arguments(EmbeddingDistillationArguments, "distill", given, self.training_output(self.distill))

    def cross_encoder_arguments(self) -> CrossEncoderArguments:
        given = {"model_name_or_path": self.start("teacher"), "train_file": self.preset.sts_train}
        given["test_file"] = self.preset.sts_dev
        return self.arguments(CrossEncoderArguments, "cross_encoder", given, self.training_output(self.cross_encoder))

    def silver_arguments(self) -> SilverArguments:
        """The gold training pairs' sentences, paired anew and scored by the cross-encoder; a sentence's nearest
        neighbours (the default sampler) by the pretrained teacher's mean-pooled embeddings."""
        given = {"cross_encoder_name_or_path": self.encoder(self.cross_encoder), "sentences": [self.preset.sts_train]}
        if self.preset.silver.get("sampler", "neighbours") == "neighbours":
            given["encoder_name_or_path"] = self.start("teacher")  # unless the preset's section names another
        return self.arguments(SilverArguments, "silver", given, {"output_file": str(self.silver_file)})

    def evaluate_arguments(self) -> EvaluateArguments:
        models = [self.encoder(self.model_stage(name)) for name in self.bi_encoders]
        given = {"model_name_or_path": models, "data": [self.preset.sts_dev]}
        output = {"output_file": str(self.evaluation.folder / EVALUATION_FILE)}
        return self.arguments(EvaluateArguments, "evaluate", given, output)

    def check(self) -> None:
        """Make every stage's options now; ValueError names the preset section a command refuses."""
        self.check_data()
        if self.base:
            self.base.check()
        # The augmented student's options name the silver file, which its stage has yet to write: the baseline's.
        self.simcse_arguments()
        self.sts_arguments("baseline")
        self.distill_arguments()
        self.cross_encoder_arguments()
        self.silver_arguments()
        self.evaluate_arguments()

    def check_data(self) -> None:
        """ValueError naming the preset key of a data file that is not there, before any command is asked: a fresh
        clone has no ../shared, and the bundled samples are another preset's (it was two lines about sentence.simcse's
        --dev)."""
        p = self.preset
        named = [("nli", path) for path in p.nli] + [("sts_train", p.sts_train), ("sts_dev", p.sts_dev)]
        named += [("sentences", path) for path in p.sentences]
        if missing := [f"{key} {path!r}" for key, path in named if is_missing_file(path)]:
            raise ValueError(
                f"preset {p.name!r}: no such file: {', '.join(missing)} (give the files with --set KEY=PATH; "
                "--preset sentence-smoke runs on the samples bundled in data/)"
            )

    # The stages' work: each stage is one command's typed function, called in this process, or the command run
    # through the preset's launcher.
    def stage_call(self, stage: Stage) -> StageCall:
        name = stage.folder.name
        if name in STS_STAGES:
            return StageCall("sentence.sts", train_sts, self.sts_arguments(name))
        module, function, arguments = {
            "simcse": ("sentence.simcse", train_simcse, self.simcse_arguments),
            "distill": ("sentence.distil_embeddings", distil_embeddings, self.distill_arguments),
            "cross_encoder": ("sentence.cross_encoder", train_cross_encoder, self.cross_encoder_arguments),
            "silver": ("sentence.silver", label_silver_pairs, self.silver_arguments),
            "evaluate": ("sentence.evaluate", evaluate_encoders, self.evaluate_arguments),
        }[name]
        return StageCall(module, function, arguments())

    def run_stage(self, stage: Stage) -> None:
        """The stage's typed function; the training commands through ``launcher`` when the preset has one, their
        options in ``arguments.yaml`` in the stage's folder (``--config``). The evaluation times the models on this
        process's CPU, so it never is."""
        call = self.stage_call(stage)
        if self.preset.launcher and call.function is not evaluate_encoders:
            options = stage.folder / ARGUMENTS_FILE
            save_config(call.arguments, options)
            command = [*shlex.split(self.preset.launcher), "-m", call.module, "--config", str(options)]
            logger.info("running %s", shlex.join(command))
            subprocess.run(command, check=True)
        else:
            call.function(call.arguments)

    def result_rows(self) -> list[dict[str, Any]]:
        """results.json: one object per model: the evaluation's dev scores and speed for the bi-encoders, the
        cross-encoder's own dev scores (it scores pairs, so no sentences/s)."""
        evaluated = json.loads((self.evaluation.folder / EVALUATION_FILE).read_text(encoding="utf-8"))["rows"]
        by_name = dict(zip(self.bi_encoders, evaluated, strict=True))
        dev = data_name(self.preset.sts_dev)
        rows = []
        for name in self.models:
            kind = "cross-encoder" if name == "cross_encoder" else "bi-encoder"
            common = {"name": name, "kind": kind, "teacher": MODELS[name][1]}
            if name in by_name:
                row = by_name[name]
                measured = {
                    "params": row["params"],
                    "korsts_dev_spearman": row["scores"][dev]["spearman"],
                    "korsts_dev_pearson": row["scores"][dev]["pearson"],
                    "sentences_per_s_b1": row["sentences_per_s_b1"],
                    "sentences_per_s_b64": row["sentences_per_s_b64"],
                    "model_dir": row["model_dir"],
                }
            else:
                trained = json.loads((self.cross_encoder.folder / "results.json").read_text(encoding="utf-8"))
                measured = {
                    "params": trained["params"],
                    "korsts_dev_spearman": trained["dev"]["spearman"],
                    "korsts_dev_pearson": trained["dev"]["pearson"],
                    "sentences_per_s_b1": None,
                    "sentences_per_s_b64": None,
                    "model_dir": trained["model_dir"],
                }
            rows.append(common | measured)
        return rows


def markdown(rows: list[dict[str, Any]], preset: str) -> str:
    """The results table: each model's dev correlations and speed, its Spearman against its own teacher's and its
    speed against the bi-encoder teacher's (the baseline's against both)."""
    by_name = {row["name"]: row for row in rows}
    reference = by_name.get("teacher")
    lines = [
        f"# Sentence-encoder recipe: preset {preset}",
        "",
        "| model | kind | teacher | parameters | KorSTS dev Spearman | Pearson | sentences/s b1 | sentences/s b64 "
        "| speed-up b64 | Spearman retained (%) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        fast = row["sentences_per_s_b64"] is not None and reference is not None
        speedup = f"{row['sentences_per_s_b64'] / reference['sentences_per_s_b64']:.2f}×" if fast else "–"
        teacher = by_name.get(row["teacher"]) if row["teacher"] else None
        retained = f"{100 * row['korsts_dev_spearman'] / teacher['korsts_dev_spearman']:.1f}" if teacher else "–"
        speeds = [f"{row[key]:,.0f}" if row[key] is not None else "–" for key in SPEED_KEYS]
        lines.append(
            f"| {row['name']} | {row['kind']} | {row['teacher'] or '–'} | {row['params']:,} "
            f"| {row['korsts_dev_spearman']:.2f} | {row['korsts_dev_pearson']:.2f} | {' | '.join(speeds)} "
            f"| {speedup} | {retained} |"
        )
    return "\n".join(lines) + "\n"


def write_sentence_results(recipe: SentenceRecipe) -> str:
    rows = recipe.result_rows()
    folder = recipe.output / "sentence"
    write_json(folder / "results.json", rows)
    table = markdown(rows, recipe.preset.name)
    write_text(folder / "results.md", table)
    return table
