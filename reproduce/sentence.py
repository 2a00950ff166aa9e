"""The sentence-encoder recipe: a teacher bi-encoder (SimCSE on NLI, then STS), a student distilled from its
embeddings and then fine-tuned on STS, and the same student on STS alone, scored and timed side by side.

    python -m reproduce --preset sentence-mini --output runs/sentence-mini

A preset with ``pipeline: sentence`` (``reproduce/presets/sentence-mini.yaml``) names where the teacher and the
student start: folders or Hub ids (``teacher``, ``student``), or ``base: PRESET``, the main recipe's preset whose
pretrained teacher and distilled student they are (its tokenizer, data, teacher and distilled stages run first,
into the same output folder, and are skipped when already done). The stages run through ``reproduce.stages``'
runner: a stage whose inputs are unchanged is skipped, a failing one is named and the ones before it are kept.
Its stages write under OUTPUT/sentence/, beside the base recipe's folders; it ends with OUTPUT/sentence/results.json
(one object per model: ``teacher``, ``distilled``, ``baseline``) and results.md.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.io import write_atomic, write_json
from reproduce.preset import apply_override, load_preset
from reproduce.stages import Recipe, Stage, as_argv, file_stamps

SECTIONS = ("simcse", "sts", "distill", "evaluate")
MODELS = ("teacher", "distilled", "baseline")


@dataclass
class SentencePreset:
    """One configuration of the sentence-encoder recipe; see ``reproduce/presets/sentence-mini.yaml``."""

    name: str = ""
    pipeline: str = "sentence"
    base: str = ""  # a main-recipe preset whose teacher/final and distilled/final are the starting points
    teacher: str = ""  # or a folder or Hub id the teacher starts from ...
    student: str = ""  # ... and one the student starts from
    nli: list[str] = field(default_factory=list)  # sentence.simcse --nli files
    sts_train: str = ""  # KorSTS (or KLUE-STS) training pairs
    sts_dev: str = ""  # the pairs every model is scored on
    sentences: list[str] = field(default_factory=list)  # sentence.distill --sentences
    simcse: dict[str, Any] = field(default_factory=dict)  # sentence.simcse options
    sts: dict[str, Any] = field(default_factory=dict)  # sentence.sts options (all three STS stages)
    distill: dict[str, Any] = field(default_factory=dict)  # sentence.distill options
    evaluate: dict[str, Any] = field(default_factory=dict)  # sentence.evaluate options (repeats)

    def check(self) -> None:
        problems = []
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
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return isinstance(values, dict) and values.get("pipeline") == "sentence"


def load_sentence_preset(path: Path, overrides: list[str]) -> SentencePreset:
    """The preset file with ``--set KEY=VALUE`` overrides on top; unknown keys are errors."""
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
        self.base = Recipe(load_preset(p.base), output) if p.base else None
        upstream = [self.base.teacher, self.base.distilled] if self.base else []
        # Starting folders are inputs by their files' stamps; the base recipe's models, by their stages' fingerprints.
        starts = {} if p.base else {"starts": file_stamps([f"{p.teacher}/*", f"{p.student}/*"])}
        sts_data = file_stamps([p.sts_train, p.sts_dev])
        self.simcse = Stage(
            "sentence-simcse",
            sentence / "simcse",
            {"simcse": p.simcse, "nli": file_stamps(p.nli), **starts},
            self.run_simcse,
            depends_on=upstream,
        )
        self.teacher = Stage(
            "sentence-teacher",
            sentence / "teacher",
            {"sts": p.sts, "data": sts_data},
            self.run_sts,
            depends_on=[self.simcse],
        )
        self.distill = Stage(
            "sentence-distill",
            sentence / "distill",
            {"distill": p.distill, "sentences": file_stamps(p.sentences), **starts},
            self.run_distill,
            depends_on=[self.teacher, *upstream],
        )
        self.distilled = Stage(
            "sentence-distilled",
            sentence / "distilled",
            {"sts": p.sts, "data": sts_data},
            self.run_sts,
            depends_on=[self.distill],
        )
        self.baseline = Stage(
            "sentence-baseline",
            sentence / "baseline",
            {"sts": p.sts, "data": sts_data, **starts},
            self.run_sts,
            depends_on=upstream,
        )
        self.evaluation = Stage(
            "sentence-evaluate",
            sentence / "evaluate",
            {"evaluate": p.evaluate},
            self.run_evaluate,
            depends_on=[self.teacher, self.distilled, self.baseline],
        )

    @property
    def stages(self) -> list[Stage]:
        base = [self.base.tokenizer, self.base.data, self.base.teacher, self.base.distilled] if self.base else []
        return [*base, self.simcse, self.teacher, self.distill, self.distilled, self.baseline, self.evaluation]

    def start(self, model: str) -> str:
        """Where the teacher or the student starts: the preset's folder, or the base recipe's pretrained model."""
        if self.base:
            return str(self.base.model_dir("teacher" if model == "teacher" else "distilled"))
        return self.preset.teacher if model == "teacher" else self.preset.student

    def encoder(self, stage: Stage) -> str:
        return str(stage.folder / "best")

    # Argument lists, also parsed at start-up to catch unknown options before any work.
    def simcse_argv(self) -> list[str]:
        options = {"model": self.start("teacher"), "nli": self.preset.nli, "dev": self.preset.sts_dev}
        return as_argv({**options, **self.preset.simcse, "output": str(self.simcse.folder), "overwrite": True})

    def sts_argv(self, name: str) -> list[str]:
        start = {"teacher": self.encoder(self.simcse), "distilled": self.encoder(self.distill)}
        options = {"model": start.get(name, self.start("student")), "train": self.preset.sts_train}
        options |= {"dev": self.preset.sts_dev, **self.preset.sts}
        return as_argv({**options, "output": str(getattr(self, name).folder), "overwrite": True})

    def distill_argv(self) -> list[str]:
        options = {"teacher": self.encoder(self.teacher), "student": self.start("student")}
        options |= {"sentences": self.preset.sentences, "dev": self.preset.sts_dev, **self.preset.distill}
        return as_argv({**options, "output": str(self.distill.folder), "overwrite": True})

    def evaluate_argv(self) -> list[str]:
        models = [self.encoder(getattr(self, name)) for name in MODELS]
        options = {"model": models, "data": [self.preset.sts_dev], **self.preset.evaluate}
        return as_argv({**options, "output": str(self.evaluation.folder / "evaluation.json")})

    def check(self) -> None:
        """Parse every stage's arguments now; ValueError names the preset section a command rejects."""
        from sentence import distill, evaluate, simcse, sts

        if self.base:
            self.base.check()
        checks = [
            ("simcse", simcse.parse_args, self.simcse_argv()),
            ("sts", sts.parse_args, self.sts_argv("baseline")),
            ("distill", distill.parse_args, self.distill_argv()),
            ("evaluate", evaluate.parse_args, self.evaluate_argv()),
        ]
        for section, parse, argv in checks:
            try:
                parse(argv)
            except SystemExit as err:
                raise ValueError(f"preset section {section!r}: rejected by its command (message above)") from err

    # The stages' work.
    def run_simcse(self, stage: Stage) -> None:
        from sentence.simcse import main

        main(self.simcse_argv())

    def run_sts(self, stage: Stage) -> None:
        from sentence.sts import main

        main(self.sts_argv(stage.folder.name))

    def run_distill(self, stage: Stage) -> None:
        from sentence.distill import main

        main(self.distill_argv())

    def run_evaluate(self, stage: Stage) -> None:
        from sentence.evaluate import main

        main(self.evaluate_argv())

    def result_rows(self) -> list[dict[str, Any]]:
        """results.json: one object per model, from the evaluation (dev scores and speed) and its training."""
        rows = json.loads((self.evaluation.folder / "evaluation.json").read_text(encoding="utf-8"))["rows"]
        dev = Path(self.preset.sts_dev).stem
        return [
            {
                "name": name,
                "params": row["params"],
                "korsts_dev_spearman": row["scores"][dev]["spearman"],
                "korsts_dev_pearson": row["scores"][dev]["pearson"],
                "sentences_per_s_b1": row["sentences_per_s_b1"],
                "sentences_per_s_b64": row["sentences_per_s_b64"],
                "model_dir": row["model_dir"],
            }
            for name, row in zip(MODELS, rows, strict=True)
        ]


def markdown(rows: list[dict[str, Any]], preset: str) -> str:
    """The results table: each model's dev correlations, and its speed and Spearman against the teacher's."""
    teacher = rows[0]
    lines = [
        f"# Sentence-encoder recipe: preset {preset}",
        "",
        "| model | parameters | KorSTS dev Spearman | Pearson | sentences/s b1 | sentences/s b64 | speed-up b64 "
        "| Spearman retained (%) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        speedup = row["sentences_per_s_b64"] / teacher["sentences_per_s_b64"]
        retained = 100 * row["korsts_dev_spearman"] / teacher["korsts_dev_spearman"]
        lines.append(
            f"| {row['name']} | {row['params']:,} | {row['korsts_dev_spearman']:.2f} | {row['korsts_dev_pearson']:.2f} "
            f"| {row['sentences_per_s_b1']:,.0f} | {row['sentences_per_s_b64']:,.0f} | {speedup:.2f}× "
            f"| {retained:.1f} |"
        )
    return "\n".join(lines) + "\n"


def write_sentence_results(recipe: SentenceRecipe) -> str:
    rows = recipe.result_rows()
    folder = recipe.output / "sentence"
    write_json(folder / "results.json", rows)
    table = markdown(rows, recipe.preset.name)
    write_atomic(folder / "results.md", lambda staging: staging.write_text(table, encoding="utf-8"))
    return table
