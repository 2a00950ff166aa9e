"""General distillation against an earlier commit, side by side: ``pretrain/run.py`` of this tree (with its
``--teacher_dtype``) and of a baseline checkout, on the same teacher, data and schedule, and what a teacher kept in
lower precision changes in the soft targets.

    python -m benchmarks.distill_speedup                          # the baseline commit checked out under --work_dir
    python -m benchmarks.distill_speedup --setups tiny kobert e5 --e5_dir runs/e5-local

Setups (each built once under --work_dir, from this tree's commands and the bundled data):
- ``kobert``: a KoBERT-shaped random teacher (12 layers, hidden 768; the real KoBERT tokenizer, data/kobert) into
  its 3-layer student (layers 0, 4, 8), batch 4 x 128 tokens of the bundled reviews; the KL, cross-entropy and
  cosine terms.
- ``tiny``: ``modeling.random_teacher``'s tiny shape (4 layers, hidden 64) into 2 layers, batch 16 x 128.
- ``e5``: the real teacher, multilingual-e5-small trimmed (``e5-local``'s teacher/final and data/, after
  ``python -m reproduce --preset e5-local``; skipped without them), into layers 0, 4, 8 through its hidden states,
  batch 32 x 64, as the recipe distils it.

Each tree runs each setup ``--rounds`` times, alternating, in fresh processes; tokens/s is the median of the run's
logged windows after the first (warm-up), the median over rounds kept. The student's masked-LM accuracy (and with e5
its hidden-state cosine to the teacher) is the run's last evaluation. The soft targets are compared in this process:
the float32 teacher against its ``--teacher_dtype`` copy on ``--drift_positions`` masked positions of the setup's
blocks (mean KL at the distillation temperature and at 1, top-1 agreement, and the last hidden states' cosine). The
random teachers' distributions are nearly uniform and e5 has no masked-LM head, so the KL is also measured on a
masked LM whose head was trained: the e5-local recipe's distilled student (``--e5_dir``/distilled/final).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import write_report
from common.config import key, run_command
from common.io import write_text

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "bf4c407"  # the tree before --teacher_dtype (issue 34's "today")
SETUPS = ("kobert", "tiny", "e5")
KOBERT_TOKENIZER = str(ROOT / "data" / "kobert")  # the real KoBERT tokenizer, shipped


@dataclass(kw_only=True)
class SpeedupOptions:
    """What ``python -m benchmarks.distill_speedup`` reads."""

    baseline_commit: str = key(BASELINE_COMMIT, "The commit to compare with, checked out under --work_dir.")
    baseline_dir: str = key("", "A checkout of the baseline already made; empty: git worktree of --baseline_commit.")
    setups: list[str] = key(list(SETUPS), f"Which of {', '.join(SETUPS)} to run (e5: when --e5_dir has its run).")
    teacher_dtype: str = key("bfloat16", "This tree's --teacher_dtype.")
    max_steps: int = key(20, "Optimizer steps of every run (kobert and tiny; e5 runs 3x as many).")
    rounds: int = key(2, "Runs of each tree per setup, alternated.")
    drift_positions: int = key(10_000, "Masked positions on which the two teachers' soft targets are compared.")
    e5_dir: str = key("runs/e5-local", "An e5-local recipe's output (teacher/final, data/) for the e5 setup.")
    work_dir: str = key("runs/distill-speedup", "Teachers, data, the baseline checkout and the runs.")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "distill_speedup.json"), "The figures, as JSON.")

    def validate(self) -> None:
        unknown = sorted(set(self.setups) - set(SETUPS))
        if unknown:
            raise ValueError(f"--setups: unknown {', '.join(unknown)}; known: {', '.join(SETUPS)}")
        if min(self.max_steps, self.rounds, self.drift_positions) < 1:
            raise ValueError("--max_steps, --rounds and --drift_positions must be at least 1")


@dataclass
class Setup:
    name: str
    teacher: str
    data_dir: str
    schedule: dict[str, Any]  # pretrain/run.py keys both trees read


def baseline_checkout(options: SpeedupOptions) -> Path:
    """The baseline tree: the given folder, or a detached git worktree of the commit (made once)."""
    if options.baseline_dir:
        return Path(options.baseline_dir)
    folder = Path(options.work_dir) / f"baseline-{options.baseline_commit}"
    if not folder.is_dir():
        command = ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder.resolve())]
        done = subprocess.run([*command, options.baseline_commit], capture_output=True, text=True)
        if done.returncode != 0:  # no git, not a clone, or a commit this clone does not have
            raise ValueError(
                f"--baseline_commit {options.baseline_commit}: cannot check it out beside the tree "
                f"({done.stderr.strip() or 'git failed'}); give a checkout with --baseline_dir"
            )
    return folder


def kobert_data(work: Path, max_seq_length: int) -> str:
    """The bundled reviews packed with KoBERT's tokenizer (made once)."""
    from pretrain.prepare import PrepareArguments, prepare_corpus

    folder = work / f"reviews-{max_seq_length}"
    if not (folder / "meta.json").is_file():
        prepare_corpus(
            PrepareArguments(
                corpus=[str(ROOT / "data" / "reviews.txt.gz")],
                tokenizer_name_or_path=KOBERT_TOKENIZER,
                output_dir=str(folder),
                max_seq_length=max_seq_length,
                validation_ratio=0.05,
            )
        )
    return str(folder)


def random_teacher(work: Path, shape: str) -> str:
    """``modeling.random_teacher``'s ``shape`` with KoBERT's tokenizer (made once)."""
    from modeling.random_teacher import RandomTeacherArguments, save_random_teacher

    folder = work / f"{shape}-teacher"
    if not (folder / "config.json").is_file():
        args = RandomTeacherArguments(shape=shape, tokenizer_name_or_path=KOBERT_TOKENIZER, output_dir=str(folder))
        save_random_teacher(args)
    return str(folder)


def build_setups(options: SpeedupOptions) -> list[Setup]:
    work = Path(options.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    common = {"logging_steps": max(1, options.max_steps // 5), "eval_max_batches": 8, "report_to": "none"}
    built = []
    for name in options.setups:
        steps = options.max_steps * (3 if name == "e5" else 1)
        schedule = {**common, "max_steps": steps, "eval_steps": steps, "save_steps": steps, "seed": 0}
        if name == "kobert":
            schedule |= {"student_layers": [0, 4, 8], "per_device_train_batch_size": 4}
            built.append(Setup(name, random_teacher(work, "kobert"), kobert_data(work, 128), schedule))
        elif name == "tiny":
            schedule |= {"student_layers": [0, 2], "per_device_train_batch_size": 16}
            built.append(Setup(name, random_teacher(work, "tiny"), kobert_data(work, 128), schedule))
        elif has_e5_run(options.e5_dir):
            e5 = Path(options.e5_dir)
            schedule = {**e5_recipe_schedule(), **schedule, "logging_steps": max(1, steps // 5)}
            built.append(Setup(name, str(e5 / "teacher" / "final"), str(e5 / "data"), schedule))
    return built


def e5_recipe_schedule() -> dict[str, Any]:
    """The e5-local recipe's distillation settings (its preset's student section): layers, batch, loss weights."""
    from common.config import read_preset
    from reproduce.preset import preset_path

    student = read_preset(preset_path("e5-local"))["student"]
    return {"student_layers": student["layers"], **student["train"]}


def has_e5_run(e5_dir: str) -> bool:
    return (Path(e5_dir) / "teacher" / "final").is_dir() and (Path(e5_dir) / "data" / "meta.json").is_file()


def run_tree(tree: Path, setup: Setup, output: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """``pretrain/run.py`` of ``tree`` (its own code first on the path) on the setup: the logged tokens/s and the
    last evaluation."""
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    paths = {"teacher": setup.teacher, "data_dir": setup.data_dir, "output_dir": output / "run"}  # run from tree
    config = output / "config.json"  # YAML is a superset of JSON
    values = {**setup.schedule, **{k: str(Path(v).resolve()) for k, v in paths.items()}, **extra}
    write_text(config, json.dumps(values))
    env = {**os.environ, "PYTHONPATH": str(tree.resolve()), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "pretrain/run.py", "--config", str(config.resolve())]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: pretrain/run.py on {setup.name} exited {done.returncode}:\n{done.stderr[-3000:]}")
    lines = [json.loads(line) for line in (output / "run" / "metrics.jsonl").read_text().splitlines()]
    windows = [line["tokens_per_s"] for line in lines if "tokens_per_s" in line]
    evaluation = [line for line in lines if "eval_top1_accuracy" in line][-1]
    return {
        "tokens_per_s": statistics.median(windows[1:] or windows),
        "mlm_accuracy": 100 * evaluation["eval_top1_accuracy"],
        "hidden_cosine": evaluation.get("eval_hidden_cosine"),
    }


def compare_trees(options: SpeedupOptions, setup: Setup, baseline: Path) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "this": []}
    for round_ in range(options.rounds):
        for tree_name, tree, extra in (
            ("baseline", baseline, {}),
            ("this", ROOT, {"teacher_dtype": options.teacher_dtype}),
        ):
            output = Path(options.work_dir) / "runs" / setup.name / f"{tree_name}-{round_}"
            runs[tree_name].append(run_tree(tree, setup, output, extra))
    row = {"setup": setup.name, "schedule": setup.schedule, "teacher": setup.teacher}
    for tree_name, results in runs.items():
        row[tree_name] = {
            "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in results), 1),
            "tokens_per_s_rounds": [round(r["tokens_per_s"], 1) for r in results],
            "mlm_accuracy": round(results[0]["mlm_accuracy"], 2),  # the same seeds every round
            "hidden_cosine": results[0]["hidden_cosine"],
        }
    row["speedup"] = round(row["this"]["tokens_per_s"] / row["baseline"]["tokens_per_s"], 3)
    row["accuracy_change"] = round(row["this"]["mlm_accuracy"] - row["baseline"]["mlm_accuracy"], 2)
    return row


def load_masked_lm(folder: str) -> tuple[Any, bool]:
    """A BERT teacher as pretrain/run.py loads it (with whether its head is trained), or another masked LM."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    from modeling.load import load_bert_teacher

    if AutoConfig.from_pretrained(folder).model_type == "bert":
        return load_bert_teacher(folder)
    return AutoModelForMaskedLM.from_pretrained(folder), True


def soft_target_drift(folder: str, setup: Setup, teacher_dtype: str, positions_wanted: int) -> dict[str, Any]:
    """The float32 masked LM in ``folder`` against its ``teacher_dtype`` copy on the setup's blocks, masked as
    training masks them: mean KL(float32 || copy) at the distillation temperature and at 1 and top-1 agreement (with
    a trained head), and the mean cosine of the last hidden states over non-padding tokens."""
    import copy

    import torch

    from modeling.load import load_tokenizer
    from pretrain.blocks import PackedBlocks, load_token_counts
    from pretrain.distillation_config import config_from_dict
    from pretrain.masking import token_weights
    from pretrain.step import masked_batch, teacher_outputs

    config = config_from_dict({**setup.schedule, "teacher": folder, "data_dir": setup.data_dir, "output_dir": "-"})
    exact_model, has_head = load_masked_lm(folder)
    exact_model.requires_grad_(False).eval()
    lower_model = copy.deepcopy(exact_model).to(getattr(torch, teacher_dtype))
    tokenizer = load_tokenizer(folder)
    special = {"mask": tokenizer.mask_token_id, "pad": tokenizer.pad_token_id}
    weights = token_weights(load_token_counts(setup.data_dir), config.mlm_smoothing, tokenizer.all_special_ids)
    blocks = PackedBlocks(setup.data_dir, "train")
    sums = {"kl": 0.0, "kl_t1": 0.0, "agree": 0.0, "cosine": 0.0}
    positions_seen = tokens_seen = 0
    with torch.no_grad():
        for start in range(0, len(blocks), 16):
            batch = torch.stack([blocks[i] for i in range(start, min(start + 16, len(blocks)))])
            inputs, _, mask, positions = masked_batch(batch, weights, start, config, special)
            exact = teacher_outputs(exact_model, inputs, mask, positions, with_logits=has_head)
            approx = teacher_outputs(lower_model, inputs, mask, positions, with_logits=has_head)
            real = mask.bool()
            cosine = torch.nn.functional.cosine_similarity(exact.hidden[real], approx.hidden[real], dim=-1)
            sums["cosine"] += float(cosine.double().sum())
            tokens_seen += int(real.sum())
            if has_head:
                for name, t in (("kl", config.temperature), ("kl_t1", 1.0)):
                    p, q = (torch.log_softmax(x.double() / t, -1) for x in (exact.logits, approx.logits))
                    sums[name] += float((p.exp() * (p - q)).sum())
                sums["agree"] += float((exact.logits.argmax(-1) == approx.logits.argmax(-1)).sum())
            positions_seen += int(positions.sum())
            if positions_seen >= positions_wanted:
                break
    drift: dict[str, Any] = {"model": folder, "masked_positions": positions_seen, "tokens": tokens_seen}
    drift["hidden_cosine"] = round(sums["cosine"] / tokens_seen, 7)
    if has_head:
        drift[f"kl_at_t{config.temperature:g}"] = sums["kl"] / positions_seen
        drift["kl_at_t1"] = sums["kl_t1"] / positions_seen
        drift["top1_agreement"] = round(sums["agree"] / positions_seen, 5)
    return drift


def measure_speedup(options: SpeedupOptions) -> dict[str, Any]:
    options.validate()
    baseline = baseline_checkout(options)
    rows = []
    for setup in build_setups(options):
        row = compare_trees(options, setup, baseline)
        row["soft_targets"] = [soft_target_drift(setup.teacher, setup, options.teacher_dtype, options.drift_positions)]
        trained_head = Path(options.e5_dir) / "distilled" / "final"
        if setup.name == "e5" and trained_head.is_dir():
            drift = soft_target_drift(str(trained_head), setup, options.teacher_dtype, options.drift_positions)
            row["soft_targets"].append(drift)
        rows.append(row)
    skipped = ["e5"] if "e5" in options.setups and not has_e5_run(options.e5_dir) else []
    figures = {
        "skipped": [
            f"e5: {options.e5_dir} has no e5-local run (python -m reproduce --preset e5-local)" for _ in skipped
        ],
        "baseline_commit": options.baseline_commit if not options.baseline_dir else options.baseline_dir,
        "teacher_dtype": options.teacher_dtype,
        "rounds": options.rounds,
        "setups": rows,
    }
    return write_report(options.output_file, "distill_speedup", figures)


def drift_summary(drift: dict[str, Any]) -> str:
    kl = "".join(f"{k} {v:.2e}, " for k, v in drift.items() if k.startswith("kl"))
    agreement = f"top-1 agreement {drift['top1_agreement']:.2%}, " if "top1_agreement" in drift else ""
    return (
        f"{Path(drift['model']).parent.name}/{Path(drift['model']).name}: {kl}{agreement}"
        f"hidden cosine {drift['hidden_cosine']:.5f} ({drift['masked_positions']:,} positions)"
    )


def main(argv: list[str] | None = None) -> int:
    report = run_command(measure_speedup, SpeedupOptions, argv, "python -m benchmarks.distill_speedup", __doc__)
    print(f"this tree (--teacher_dtype {report['teacher_dtype']}) against {report['baseline_commit']}")
    print("| setup | baseline tokens/s | this tokens/s | speed-up | MLM acc. baseline | this | change | soft targets |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for row in report["setups"]:
        shown = "; ".join(drift_summary(drift) for drift in row["soft_targets"])
        print(
            f"| {row['setup']} | {row['baseline']['tokens_per_s']:,.0f} | {row['this']['tokens_per_s']:,.0f} | "
            f"{row['speedup']:.2f}x | {row['baseline']['mlm_accuracy']:.2f} | {row['this']['mlm_accuracy']:.2f} | "
            f"{row['accuracy_change']:+.2f} | {shown} |"
        )
    for reason in report["skipped"]:
        print(f"skipped {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
