"""The sentence-encoder recipe: a teacher bi-encoder (SimCSE on NLI, then STS), a student distilled from its
embeddings and then fine-tuned on STS, and the same student on STS alone, scored and timed side by side; with
``teacher_type: [bi-encoder, cross-encoder]``, also a cross-encoder teacher trained on the gold pairs and a student
trained on the gold pairs plus the silver pairs it scored (Augmented SBERT).

    python -m reproduce --preset sentence-mini --output runs/sentence-mini

A preset with ``pipeline: sentence`` (``reproduce/presets/sentence-mini.yaml``) names where the teacher and the
student start: folders or Hub ids (``teacher``, ``student``), or ``base: PRESET``, the main recipe's preset whose
pretrained teacher and distilled student they are (its tokenizer, data, teacher and distilled stages run first,
into the same output folder, and are skipped when already done; ``base_set`` changes the base preset as ``--set``
does). The stages run through ``reproduce.stages``'
runner: a stage whose inputs are unchanged is skipped, a failing one is named and the ones before it are kept.
Its stages write under OUTPUT/sentence/, beside the base recipe's folders; it ends with OUTPUT/sentence/results.json
(one object per model: ``teacher``, ``distilled``, ``cross_encoder``, ``augmented``, ``baseline``, those the teacher
types make) and results.md.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import read_preset
from common.io import is_missing_file, write_json, write_text
from reproduce.preset import PRESET_MAPPING, apply_override, load_preset
from reproduce.stages import Recipe, Stage, as_argv, file_stamps

logger = logging.getLogger("reproduce")

TEACHER_TYPES = ("bi-encoder", "cross-encoder")
SPEED_KEYS = ("sentences_per_s_b1", "sentences_per_s_b64")
# Each model of the results: its teacher type (None: the baseline, in every run) and the row it learned from.
MODELS = {
    "teacher": ("bi-encoder", None),
    "distilled": ("bi-encoder", "teacher"),
    "cross_encoder": ("cross-encoder", None),
    "augmented": ("cross-encoder", "cross_encoder"),
    "baseline": (None, None),
}


@dataclass
class SentencePreset:
    """One configuration of the sentence-encoder recipe; see ``reproduce/presets/sentence-mini.yaml``."""

    name: str = ""
    pipeline: str = "sentence"
    base: str = ""  # a main-recipe preset whose teacher/final and distilled/final are the starting points
    base_set: list[str] = field(default_factory=list)  # KEY=VALUE changes to the base preset, as --set makes them
    teacher: str = ""  # or a folder or Hub id the teacher starts from ...
    student: str = ""  # ... and one the student starts from
    nli: list[str] = field(default_factory=list)  # sentence.simcse --nli files
    sts_train: str = ""  # KorSTS (or KLUE-STS) training pairs
    sts_dev: str = ""  # the pairs every model is scored on
    sentences: list[str] = field(default_factory=list)  # sentence.distill --sentences
    teacher_type: list[str] = field(default_factory=lambda: ["bi-encoder"])  # bi-encoder, cross-encoder or both
    simcse: dict[str, Any] = field(default_factory=dict)  # sentence.simcse options
    sts: dict[str, Any] = field(default_factory=dict)  # sentence.sts options (all three STS stages)
    distill: dict[str, Any] = field(default_factory=dict)  # sentence.distill options
    evaluate: dict[str, Any] = field(default_factory=dict)  # sentence.evaluate options (repeats)
    cross_encoder: dict[str, Any] = field(default_factory=dict)  # sentence.cross_encoder options
    silver: dict[str, Any] = field(default_factory=dict)  # sentence.silver options (the sts_train sentences paired)
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

    # Argument lists, also parsed at start-up to catch unknown options before any work.
    def simcse_argv(self) -> list[str]:
        options = {"model": self.start("teacher"), "nli": self.preset.nli, "dev": self.preset.sts_dev}
        return as_argv({**options, **self.preset.simcse, "output": str(self.simcse.folder), "overwrite": True})

    def sts_argv(self, name: str) -> list[str]:
        start = {"teacher": self.encoder(self.simcse), "distilled": self.encoder(self.distill)}
        options = {"model": start.get(name, self.start("student")), "train": self.preset.sts_train}
        if name == "augmented":
            options["silver"] = [str(self.silver_file)]
        options |= {"dev": self.preset.sts_dev, **self.preset.sts}
        return as_argv({**options, "output": str(self.model_stage(name).folder), "overwrite": True})

    def distill_argv(self) -> list[str]:
        options = {"teacher": self.encoder(self.teacher), "student": self.start("student")}
        options |= {"sentences": self.preset.sentences, "dev": self.preset.sts_dev, **self.preset.distill}
        return as_argv({**options, "output": str(self.distill.folder), "overwrite": True})

    def cross_encoder_argv(self) -> list[str]:
        options = {"model": self.start("teacher"), "train": self.preset.sts_train, "dev": self.preset.sts_dev}
        options |= self.preset.cross_encoder
        return as_argv({**options, "output": str(self.cross_encoder.folder), "overwrite": True})

    def silver_argv(self) -> list[str]:
        """The gold training pairs' sentences, paired anew and scored by the cross-encoder; a sentence's nearest
        neighbours (the default sampler) by the pretrained teacher's mean-pooled embeddings."""
        options = {"cross_encoder": self.encoder(self.cross_encoder), "sentences": [self.preset.sts_train]}
        options |= self.preset.silver
        if options.get("sampler", "neighbours") == "neighbours":
            options.setdefault("encoder", self.start("teacher"))
        return as_argv({**options, "output": str(self.silver_file)})

    def evaluate_argv(self) -> list[str]:
        models = [self.encoder(self.model_stage(name)) for name in self.bi_encoders]
        options = {"model": models, "data": [self.preset.sts_dev], **self.preset.evaluate}
        return as_argv({**options, "output": str(self.evaluation.folder / "evaluation.json")})

    def check(self) -> None:
        """Parse every stage's arguments now; ValueError names the preset section a command rejects."""
        from sentence import cross_encoder, distill, evaluate, silver, simcse, sts

        self.check_data()
        if self.base:
            self.base.check()
        checks = [
            ("simcse", simcse.parse_args, self.simcse_argv()),
            ("sts", sts.parse_args, self.sts_argv("baseline")),
            ("distill", distill.parse_args, self.distill_argv()),
            ("cross_encoder", cross_encoder.parse_args, self.cross_encoder_argv()),
            ("silver", silver.parse_args, self.silver_argv()),
            ("evaluate", evaluate.parse_args, self.evaluate_argv()),
        ]
        for section, parse, argv in checks:
            try:
                parse(argv)
            except SystemExit as err:
                raise ValueError(f"preset section {section!r}: rejected by its command (message above)") from err

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

    # The stages' work: each stage is one command, run in this process or through the preset's launcher.
    def stage_command(self, stage: Stage) -> tuple[str, list[str]]:
        name = stage.folder.name
        if name in ("teacher", "distilled", "augmented", "baseline"):
            return "sentence.sts", self.sts_argv(name)
        argv = {
            "simcse": self.simcse_argv,
            "distill": self.distill_argv,
            "cross_encoder": self.cross_encoder_argv,
            "silver": self.silver_argv,
            "evaluate": self.evaluate_argv,
        }[name]
        return f"sentence.{name}", argv()

    def run_stage(self, stage: Stage) -> None:
        """The stage's command; training ones through ``launcher`` when the preset has one (the evaluation times the
        models on this process's CPU, so it never is)."""
        module, argv = self.stage_command(stage)
        if self.preset.launcher and module != "sentence.evaluate":
            command = [*shlex.split(self.preset.launcher), "-m", module, *argv]
            logger.info("running %s", shlex.join(command))
            subprocess.run(command, check=True)
        else:
            importlib.import_module(module).main(argv)

    def result_rows(self) -> list[dict[str, Any]]:
        """results.json: one object per model: the evaluation's dev scores and speed for the bi-encoders, the
        cross-encoder's own dev scores (it scores pairs, so no sentences/s)."""
        from sentence.evaluate import data_name

        evaluated = json.loads((self.evaluation.folder / "evaluation.json").read_text(encoding="utf-8"))["rows"]
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
