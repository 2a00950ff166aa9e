"""The stages of the recipe, each a function that writes one folder under the run's output, and the runner that
skips a stage whose recorded inputs are unchanged.

A stage's *inputs* are everything its output depends on: its preset section, the size and modification time of the
files it reads, and the fingerprints of the stages it reads from. Their hash, the fingerprint, is written to
``STAGE/stage.json`` when the stage finishes; a later run with the same fingerprint skips the stage. A stage that
did not finish is redone, except that a pretraining stage with the same fingerprint continues from its newest
checkpoint.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import itertools
import json
import logging
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, BertConfig

from common.checkpoints import continue_options, latest_checkpoint
from common.config import config_from_dict
from common.io import ROOT, machine_description, open_text, write_atomic, write_json
from common.readers import is_local
from distill.cache_logits import CacheLogitsArguments, cache_logits
from finetune.arguments import RUN_OUTPUTS as FINETUNE_OUTPUTS
from finetune.arguments import FinetuneArguments
from finetune.tasks import fine_tune, get_task
from modeling.extract import ExtractArguments, extract_student
from modeling.latency import compare_latency
from modeling.load import load_teacher, load_tokenizer
from modeling.random_teacher import save_random_model
from pretrain.build_tokenizer import TokenizerArguments, build_tokenizer
from pretrain.distillation_config import config_from_dict as pretrain_config
from pretrain.distillation_config import save_config
from pretrain.prepare import PrepareArguments, prepare_corpus
from reproduce.preset import Preset
from serve.export import INT8_FILE, ONNX_FOLDER, REPORT_FILE, ExportArguments, export
from serve.predict import OnnxClassifier

logger = logging.getLogger("reproduce")
STAGE_FILE = "stage.json"
STARTED_FILE = "stage.started.json"
MODELS = ("teacher", "distilled", "baseline")
# The BiLSTMs of task-specific distillation (a preset's bilstm section): from the fine-tuned teacher, and without it.
BILSTMS = ("bilstm-distilled", "bilstm-baseline")
# The distilled classifier as an ONNX int8 graph (serve.export): a row of the results table.
ONNX_INT8 = "distilled-onnx-int8"
# The registered fine-tuning task the three models are compared on, with the preset's nsmc_train and nsmc_test data.
FINETUNE_TASK = "nsmc"
# The distilled student keeps the loss weights of its preset; a model trained without a teacher has the MLM term only.
MLM_ALONE = {"teacher": "", "alpha_ce": 0.0, "alpha_cos": 0.0, "alpha_mse": 0.0, "alpha_mlm": 1.0}


class StageFailed(ValueError):
    """A stage raised; the message names it and says that the stages before it are kept."""


@dataclass
class Stage:
    name: str  # shown in progress lines and errors
    folder: Path  # everything the stage writes, and its stage.json
    inputs: dict[str, Any]  # what the outputs depend on (JSON-serialisable)
    work: Callable[[Stage], None]  # writes the outputs into folder
    resumable: bool = False  # keeps an unfinished folder with the same fingerprint (pretraining checkpoints)
    depends_on: list[Stage] = field(default_factory=list)

    @cached_property
    def fingerprint(self) -> str:
        upstream = {s.name: s.fingerprint for s in self.depends_on}
        text = json.dumps({"inputs": self.inputs, "upstream": upstream}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def record(self, file: str = STAGE_FILE) -> dict[str, Any]:
        path = self.folder / file
        return json.loads(path.read_text()) if path.is_file() else {}


def file_stamps(patterns: list[str]) -> dict[str, list[int]]:
    """Size and modification time of each file the patterns name: a cheap stand-in for their contents."""
    stamps = {}
    for pattern in patterns:
        paths = sorted(glob.glob(pattern)) if is_local(pattern) or glob.has_magic(pattern) else []
        for path in paths:
            info = os.stat(path)
            stamps[os.path.abspath(path)] = [info.st_size, info.st_mtime_ns]
        if not paths:
            stamps[pattern] = [-1, -1]  # a Hub name: the name itself is the input
    return stamps


def tokenizer_files(section: dict[str, Any]) -> dict[str, list[int]]:
    """The stamps of a local ``from_pretrained`` tokenizer folder's files (a Hub id or a built tokenizer: none)."""
    folder = section.get("from_pretrained", "")
    return file_stamps([os.path.join(folder, "*")]) if folder and os.path.isdir(folder) else {}


def write_text_file(path: Path, text: str, compressed: bool) -> None:
    """``text`` into ``path``, gzip-compressed or not (``open_text`` reads a name ending in .gz as gzip)."""
    if compressed:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def run_stages(stages: list[Stage]) -> dict[str, float]:
    """Run or skip every stage in order; the seconds each one took (now, or when it last ran)."""
    seconds = {}
    for number, stage in enumerate(stages, start=1):
        prefix = f"[{number}/{len(stages)}] {stage.name}"
        finished = stage.record()
        if finished.get("fingerprint") == stage.fingerprint:
            logger.info("%s: up to date, skipped (%s)", prefix, stage.folder)
            seconds[stage.name] = finished["seconds"]
            continue
        started = stage.record(STARTED_FILE).get("fingerprint") == stage.fingerprint
        if stage.folder.exists() and not (stage.resumable and started):
            shutil.rmtree(stage.folder)
        stage.folder.mkdir(parents=True, exist_ok=True)
        (stage.folder / STAGE_FILE).unlink(missing_ok=True)
        write_json(stage.folder / STARTED_FILE, {"fingerprint": stage.fingerprint})
        logger.info("%s: running -> %s", prefix, stage.folder)
        start = time.perf_counter()
        try:
            stage.work(stage)
        except Exception as err:
            reason = str(err)
            raise StageFailed(
                f"stage {stage.name!r} failed: {reason}\nThe outputs of the stages before it are kept; fix the cause "
                f"and run the same command again to continue from {stage.name!r}."
            ) from err
        seconds[stage.name] = round(time.perf_counter() - start, 1)
        record = {"stage": stage.name, "fingerprint": stage.fingerprint, "seconds": seconds[stage.name]}
        write_json(stage.folder / STAGE_FILE, {**record, "inputs": stage.inputs})
        logger.info("%s: done in %.0f s", prefix, seconds[stage.name])
    return seconds


def onnx_row(recipe: Recipe, distilled: dict[str, Any], latency: dict[str, Any]) -> dict[str, Any]:
    """The distilled classifier's ONNX int8 graph: its size, latency and accuracy on the whole NSMC test file."""
    report = json.loads((recipe.onnx_dir / ONNX_FOLDER / REPORT_FILE).read_text())
    return {
        "name": ONNX_INT8,
        "params": distilled["params"],
        "size_mb": (recipe.onnx_dir / ONNX_FOLDER / INT8_FILE).stat().st_size / 2**20,
        "latency_ms_b1": round(latency["latency_ms"][ONNX_INT8]["1"], 2),
        "latency_ms_b32": round(latency["latency_ms"][ONNX_INT8]["32"], 2),
        "nsmc_accuracy": report["int8"]["int8"] / 100,
        "nsmc_model_dir": str(recipe.onnx_dir),
    }


def run_pretraining(settings: dict[str, Any], folder: Path, launcher: str) -> None:
    """``pretrain/run.py`` with ``settings`` saved as its config file: in this process, or through ``launcher``."""
    # Without a checkpoint to continue from, whatever an interrupted attempt logged is started over.
    resume = latest_checkpoint(folder) is not None
    config = pretrain_config({**settings, "output_dir": str(folder), "resume": resume, "overwrite": not resume})
    config_file = folder / "pretrain_config.yaml"
    save_config(config, config_file)
    if launcher:
        command = [*shlex.split(launcher), str(ROOT / "pretrain" / "run.py"), "--config", str(config_file)]
        logger.info("running %s", shlex.join(command))
        subprocess.run(command, check=True)
    else:
        from pretrain.run import pretrain

        pretrain(config)


class Recipe:
    """The stages of one preset writing under one output folder, in the order they run."""

    def __init__(self, preset: Preset, output: Path) -> None:
        self.preset, self.output = preset, output
        p = preset
        self.tokenizer = Stage(
            "tokenizer",
            output / "tokenizer",
            {"tokenizer": p.tokenizer, "corpus": file_stamps(p.corpus), "files": tokenizer_files(p.tokenizer)},
            self.build_tokenizer,
        )
        self.data = Stage(
            "data",
            output / "data",
            {"prepare": p.prepare, "corpus": file_stamps(p.corpus)},
            self.prepare_data,
            depends_on=[self.tokenizer],
        )
        self.teacher = Stage(
            "teacher", output / "teacher", {"teacher": p.teacher, "seed": p.seed}, self.make_teacher, True, [self.data]
        )
        self.distilled = Stage(
            "distilled", output / "distilled", {"student": p.student}, self.distil, True, [self.teacher, self.data]
        )
        self.baseline = Stage(
            "baseline",
            output / "baseline",
            {"student": p.student, "baseline": p.baseline, "seed": p.seed},
            self.train_baseline,
            True,
            [self.distilled, self.data],
        )
        self.pretrained = dict(zip(MODELS, (self.teacher, self.distilled, self.baseline), strict=True))
        self.build_nsmc_stages()
        self.build_bilstm_stages()
        self.build_output_stages()

    def build_nsmc_stages(self) -> None:
        """The NSMC fine-tuning of every pretrained model (``self.pretrained``), alike."""
        p = self.preset
        finetune_inputs = {"finetune": p.finetune, "nsmc": file_stamps([p.nsmc_train, p.nsmc_test])}
        self.nsmc = {
            name: Stage(
                f"{FINETUNE_TASK}-{name}",
                self.output / FINETUNE_TASK / name,
                finetune_inputs,
                self.fine_tune,
                depends_on=[stage],
            )
            for name, stage in self.pretrained.items()
        }

    def build_bilstm_stages(self) -> None:
        """The teacher's logits cache and the two BiLSTMs (after ``self.nsmc``: the cache reads the fine-tuned
        teacher)."""
        p, output = self.preset, self.output
        self.bilstm_cache = Stage(
            "bilstm-cache",
            output / "bilstm" / "cache",
            {
                "cache": p.bilstm.get("cache", {}),
                "transfer_examples": p.bilstm.get("transfer_examples"),
                "data": file_stamps([p.nsmc_train, *p.bilstm.get("transfer", [])]),
            },
            self.cache_teacher_logits,
            True,
            [self.nsmc["teacher"]],
        )
        bilstm_inputs = {"train": p.bilstm.get("train", {}), "nsmc": file_stamps([p.nsmc_train, p.nsmc_test])}
        self.bilstm = {
            "bilstm-distilled": Stage(
                "bilstm-distilled",
                output / "bilstm" / "distilled",
                {**bilstm_inputs, "distilled": p.bilstm.get("distilled", {})},
                self.train_bilstm,
                True,
                [self.bilstm_cache],
            ),
            "bilstm-baseline": Stage(
                "bilstm-baseline", output / "bilstm" / "baseline", bilstm_inputs, self.train_bilstm, True
            ),
        }

    def build_output_stages(self) -> None:
        """The distilled classifier's ONNX export, the latency of every classifier and the release (last)."""
        p, output = self.preset, self.output
        self.onnx = Stage(
            "onnx",
            output / "onnx",
            {"onnx": p.onnx, "nsmc_test": file_stamps([p.nsmc_test])},
            self.export_onnx,
            depends_on=[self.nsmc["distilled"]],
        )
        self.latency = Stage(
            "latency",
            output / "latency",
            {"latency": p.latency},
            self.measure_latency,
            depends_on=[*self.nsmc.values(), *self.bilstm_stages[1:], self.onnx],
        )
        self.release = Stage(
            "release",
            output / "release",
            {"release": p.release},
            self.build_release,
            depends_on=[self.distilled, self.nsmc["distilled"]],
        )

    @property
    def transfer_files(self) -> list[str]:
        """The unlabelled files the teacher labels: the preset's ``transfer``, cut to their first
        ``transfer_examples`` lines (written into the cache stage's folder) when the preset sets it."""
        files = list(self.preset.bilstm.get("transfer", []))
        if "transfer_examples" not in self.preset.bilstm:
            return files
        return [str(self.bilstm_cache.folder / "transfer" / Path(path).name) for path in files]

    def write_transfer_files(self) -> None:
        limit = self.preset.bilstm.get("transfer_examples")
        if limit is None:
            return
        for source, target in zip(self.preset.bilstm.get("transfer", []), self.transfer_files, strict=True):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            with open_text(source) as f:
                head = "".join(itertools.islice(f, limit))
            compressed = target.endswith(".gz")
            write_atomic(target, lambda staging, text=head, gz=compressed: write_text_file(staging, text, gz))

    @property
    def bilstm_stages(self) -> list[Stage]:
        """The cache and the two BiLSTMs, when the preset has a bilstm section."""
        return [self.bilstm_cache, *self.bilstm.values()] if self.preset.bilstm else []

    @property
    def compared(self) -> tuple[str, ...]:
        """The models of the results table: the three of the recipe, and the BiLSTMs when there are any."""
        return (*MODELS, *BILSTMS) if self.preset.bilstm else MODELS

    @property
    def stages(self) -> list[Stage]:
        pretraining = [self.tokenizer, self.data, self.teacher, self.distilled, self.baseline]
        return [*pretraining, *self.nsmc.values(), *self.bilstm_stages, self.onnx, self.latency, self.release]

    # Each stage's options, also built at start-up to catch unknown or bad settings before any work. ``check``
    # false: key names and types alone, for a stage whose inputs an earlier stage writes.
    def tokenizer_options(self) -> TokenizerArguments:
        options = {"corpus": self.preset.corpus, **self.preset.tokenizer, "output_dir": str(self.tokenizer.folder)}
        return config_from_dict(TokenizerArguments, {**options, "overwrite": True}, "preset section 'tokenizer'")

    def prepare_options(self, check: bool = True) -> PrepareArguments:
        options = {
            "corpus": self.preset.corpus,
            "tokenizer_name_or_path": str(self.tokenizer.folder),
            **self.preset.prepare,
            "output_dir": str(self.data.folder),
            "overwrite": True,
        }
        return config_from_dict(PrepareArguments, options, "preset section 'prepare'", check)

    def finetune_options(self, model: str, **more: Any) -> FinetuneArguments:
        """The fine-tuning of ``model`` on the preset's NSMC files, with the preset's finetune section."""
        options = {
            "model_name_or_path": str(self.model_dir(model)),
            "train_file": self.preset.nsmc_train,
            "test_file": self.preset.nsmc_test,
            **self.preset.finetune,
            "output_dir": str(self.nsmc[model].folder),
            **more,
        }
        return config_from_dict(get_task(FINETUNE_TASK).arguments, options, "preset section 'finetune'")

    def cache_options(self, check: bool = True) -> CacheLogitsArguments:
        options = {
            "teacher_name_or_path": [str(self.nsmc["teacher"].folder / "best")],
            "data_files": [self.preset.nsmc_train, *self.transfer_files],
            **self.preset.bilstm.get("cache", {}),
            "output_dir": str(self.bilstm_cache.folder / "logits"),
        }
        return config_from_dict(CacheLogitsArguments, options, "preset section 'bilstm.cache'", check)

    def bilstm_settings(self, name: str) -> dict[str, Any]:
        """distill.train keys of one BiLSTM: the distilled one reads the cache, the baseline nsmc_train alone."""
        settings = {
            **self.preset.bilstm.get("train", {}),
            "test_file": self.preset.nsmc_test,
            "output_dir": str(self.bilstm[name].folder / "run"),
        }
        if name == "bilstm-baseline":
            return {**settings, "alpha": 1.0, "train_files": [self.preset.nsmc_train]}
        return {
            **settings,
            **self.preset.bilstm.get("distilled", {}),
            "cache_dir": str(self.bilstm_cache.folder / "logits"),
        }

    def check(self) -> None:
        """Parse every stage's arguments and every training config now; ValueError names what is wrong."""
        for local in (self.preset.nsmc_train, self.preset.nsmc_test):  # named as the preset's, before any command
            if local.endswith((".txt", ".gz", ".tsv")) and not is_local(local):
                raise ValueError(f"NSMC file {local!r} does not exist")
        if "from_pretrained" not in self.preset.tokenizer:
            self.tokenizer_options()
        self.prepare_options(check=self.tokenizer.folder.is_dir())  # until it exists, names and types alone
        self.finetune_options("teacher")
        # After the fine-tuning's check: the export's options take the fine-tuning's length and test count.
        self.onnx_options(check=is_local(self.preset.nsmc_test))
        placeholders = {"data_dir": "-", "output_dir": "-", "student": "-"}
        sections = {
            "student.train": {"teacher": "-", **self.preset.student.get("train", {})},
            "baseline.train": self.baseline_settings(),
        }
        if "train" in self.preset.teacher:  # a teacher from_pretrained is not trained
            sections["teacher.train"] = {**self.preset.teacher["train"], **MLM_ALONE}
        for section, settings in sections.items():
            try:
                pretrain_config({**settings, **placeholders})
            except ValueError as err:
                raise ValueError(f"preset section {section!r}: {err}") from err
        if self.preset.bilstm:
            self.check_bilstm()

    def onnx_options(self, check: bool = True) -> ExportArguments:
        """serve.export of the distilled classifier into onnx/distilled, int8 checked on the test reviews the
        fine-tuning scored, cut at the same length, so that the float graph's accuracy is the fine-tuned model's."""
        finetune = self.finetune_options("distilled")
        options = {
            "model_name_or_path": str(self.classifier_dir("distilled")),
            "output_dir": str(self.onnx_dir),
            "int8": True,
            "check_file": self.preset.nsmc_test,
            "check_examples": finetune.max_eval_samples or 10**9,  # by default all of it
            "max_seq_length": finetune.max_seq_length,
            **self.preset.onnx,
            "overwrite": True,
        }
        return config_from_dict(ExportArguments, options, "preset section 'onnx'", check)

    @property
    def onnx_dir(self) -> Path:
        return self.onnx.folder / "distilled"

    def check_bilstm(self) -> None:
        from distill.train_config import config_from_dict as train_config

        self.cache_options(check=False)  # the transfer files are written by its stage
        for name in BILSTMS:
            try:
                train_config(self.bilstm_settings(name))
            except ValueError as err:
                raise ValueError(f"preset section 'bilstm' ({name}): {err}") from err

    def model_dir(self, model: str) -> Path:
        return self.pretrained[model].folder / "final"

    # The stages' work.
    def build_tokenizer(self, stage: Stage) -> None:
        if "from_pretrained" in self.preset.tokenizer:
            # A Hub id, a saved folder, or a folder of KoBERT's two files (SentencePiece model and vocab.txt) alone.
            options = dict(self.preset.tokenizer)
            load_tokenizer(options.pop("from_pretrained"), **options).save_pretrained(stage.folder)
            return
        build_tokenizer(self.tokenizer_options())

    def prepare_data(self, stage: Stage) -> None:
        prepare_corpus(self.prepare_options())

    def make_teacher(self, stage: Stage) -> None:
        """Pretrain a BERT masked LM from random weights (masked LM alone), or copy one, into teacher/final; with
        ``model`` and no ``train``, teacher/final keeps the random weights (a stand-in of that shape)."""
        if "from_pretrained" in self.preset.teacher:
            teacher = load_teacher(self.preset.teacher["from_pretrained"])
            teacher.save_pretrained(stage.folder / "final")
            load_tokenizer(self.preset.teacher["from_pretrained"]).save_pretrained(stage.folder / "final")
            return
        tokenizer = load_tokenizer(str(self.tokenizer.folder))
        shape = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, **self.preset.teacher["model"]}
        if "train" not in self.preset.teacher:
            save_random_model(BertConfig(**shape), tokenizer, self.model_dir("teacher"), self.preset.seed)
            return
        init = stage.folder / "init"
        if not init.is_dir():
            save_random_model(BertConfig(**shape), tokenizer, init, self.preset.seed)
        settings = {
            **self.preset.teacher["train"],
            **MLM_ALONE,
            "student": str(init),
            "data_dir": str(self.data.folder),
        }
        run_pretraining({"freeze_position_embeddings": False, **settings}, stage.folder, self.preset.launcher)

    def distil(self, stage: Stage) -> None:
        """Copy the chosen teacher layers into a DistilBERT (modeling.extract), then distil it (pretrain/run.py)."""
        init = stage.folder / "init"
        if not init.is_dir():
            teacher = str(self.model_dir("teacher"))
            layers = list(self.preset.student["layers"])
            extract_student(ExtractArguments(teacher_name_or_path=teacher, layers=layers, output_dir=str(init)))
        settings = {**self.preset.student.get("train", {}), "teacher": str(self.model_dir("teacher"))}
        run_pretraining(
            {**settings, "student": str(init), "data_dir": str(self.data.folder)}, stage.folder, self.preset.launcher
        )

    def baseline_settings(self) -> dict[str, Any]:
        """The distilled student's schedule (so as many tokens), masked LM alone, with baseline.train's changes."""
        settings = {**self.preset.student.get("train", {}), **self.preset.baseline.get("train", {}), **MLM_ALONE}
        return {"freeze_position_embeddings": False, **settings, "data_dir": str(self.data.folder)}

    def train_baseline(self, stage: Stage) -> None:
        """A DistilBERT of the distilled student's shape from random weights, trained on the masked LM alone."""
        init = stage.folder / "init"
        if not init.is_dir():
            config = AutoConfig.from_pretrained(self.distilled.folder / "init")
            save_random_model(config, load_tokenizer(str(self.tokenizer.folder)), init, self.preset.seed)
        run_pretraining({**self.baseline_settings(), "student": str(init)}, stage.folder, self.preset.launcher)

    def fine_tune(self, stage: Stage) -> None:
        # An attempt that was interrupted is resumed (or, before its first checkpoint, started over).
        again = continue_options(stage.folder, FINETUNE_OUTPUTS)
        fine_tune(FINETUNE_TASK, self.finetune_options(stage.folder.name, **again))

    def cache_teacher_logits(self, stage: Stage) -> None:
        """The fine-tuned teacher's logits over nsmc_train and the transfer set (``distill.cache_logits``)."""
        self.write_transfer_files()
        cache_logits(self.cache_options())

    def train_bilstm(self, stage: Stage) -> None:
        """``distill.train``: continued from its newest checkpoint when an interrupted attempt left one."""
        from distill.train import distill_task
        from distill.train_config import config_from_dict as train_config

        settings = self.bilstm_settings(stage.name)
        resume = latest_checkpoint(settings["output_dir"]) is not None
        config = train_config({**settings, "resume": resume, "overwrite": not resume})
        config_file = stage.folder / "train_config.yaml"
        save_config(config, config_file)
        distill_task(config)

    def classifier_dir(self, name: str) -> Path:
        """The fine-tuned classifier of a compared model (a BiLSTM's best model, or a fine-tuning's)."""
        return self.bilstm[name].folder / "run" / "best" if name in BILSTMS else self.nsmc[name].folder / "best"

    def results_file(self, name: str) -> Path:
        return (
            self.bilstm[name].folder / "run" / "results.json"
            if name in BILSTMS
            else self.nsmc[name].folder / "results.json"
        )

    def export_onnx(self, stage: Stage) -> None:
        export(self.onnx_options())

    def measure_latency(self, stage: Stage) -> None:
        """CPU latency of the fine-tuned classifiers, side by side (``modeling.latency``)."""
        options = {"seq_length": 128, "batch_sizes": [1, 32], "repeats": 10, **self.preset.latency}
        threads = options.pop("threads", torch.get_num_threads())
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            model_class = get_task(FINETUNE_TASK).auto_class()
            models = {
                name: model_class.from_pretrained(self.classifier_dir(name), trust_remote_code=True)
                for name in self.compared
            }
            config = models["distilled"].config
            models[ONNX_INT8] = OnnxClassifier(str(self.onnx_dir / ONNX_FOLDER / INT8_FILE), config, threads)
            latencies = compare_latency(models, options["batch_sizes"], options["seq_length"], options["repeats"])
        finally:
            torch.set_num_threads(previous)
        report = {**options, "threads": threads, "device": "cpu", "machine": machine_description()}
        write_json(stage.folder / "latency.json", {**report, "latency_ms": latencies})

    def build_release(self, stage: Stage) -> None:
        """The distilled student's Hub release folder, built and validated offline (``hub_upload --dry_run``)."""
        from hub_upload.__main__ import UploadArguments, upload

        options = {
            "model_name_or_path": str(self.model_dir("distilled")),
            "results_files": [str(self.nsmc["distilled"].folder / "results.json")],
            **self.preset.release,
            "dry_run": True,
            "overwrite": True,
            "output_dir": str(stage.folder),
        }
        upload(config_from_dict(UploadArguments, options, "preset section 'release'"))
