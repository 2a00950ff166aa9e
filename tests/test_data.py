"""The bundled data: sizes, formats, balance, no review shared between pretraining and NSMC samples, and the
KorSTS / KorNLI / KLUE-NLI samples drawn from the full sets exactly as data/README.md says."""

from __future__ import annotations

import json

import pytest
from conftest import BUNDLED_REVIEWS, ROOT, SHARED_DATA, read_lines

from common.readers import read_nli, read_nsmc, read_sts

DATA = ROOT / "data"


def test_bundled_data_stays_small() -> None:
    sizes = {p.name: p.stat().st_size for p in DATA.iterdir()}
    assert sum(sizes.values()) <= 6 * 2**20 and max(sizes.values()) <= 3 * 2**20, sizes


def test_nsmc_samples_are_balanced_and_disjoint_from_the_pretraining_reviews() -> None:
    train = read_nsmc(str(DATA / "nsmc_train.txt.gz"))
    test = read_nsmc(str(DATA / "nsmc_test.txt.gz"))
    assert (len(train), len(test)) == (20_000, 5_000)
    assert sum(r["label"] for r in train) == 10_000 and sum(r["label"] for r in test) == 2_500
    reviews = set(read_lines(BUNDLED_REVIEWS))
    train_texts, test_texts = {r["document"] for r in train}, {r["document"] for r in test}
    assert not train_texts & reviews and not test_texts & reviews
    assert not train_texts & test_texts


# data/README.md: the header, then every 15th (sts-train) or 5th (sts-dev) row; for NLI, every row of every 8th
# (KorNLI) or 10th (KLUE-NLI) premise in order of first appearance.
def every_nth_row(text: str, n: int) -> str:
    header, *rows = text.splitlines(keepends=True)
    return header + "".join(rows[::n])


def every_nth_premise(items: list, premise_of, n: int) -> list:
    kept = set(list(dict.fromkeys(map(premise_of, items)))[::n])
    return [item for item in items if premise_of(item) in kept]


def test_the_sentence_samples_parse_and_pair_up() -> None:
    """Each sample reads with the commands' readers; every NLI premise keeps all three of its hypotheses (SimCSE's
    triples need the entailment and the contradiction of one premise)."""
    assert (len(read_sts(str(DATA / "korsts_train.tsv"))), len(read_sts(str(DATA / "korsts_dev.tsv")))) == (384, 300)
    for name, pairs in [("kornli_dev.tsv", 312), ("klue_nli_dev.json", 300)]:
        records = read_nli(str(DATA / name))
        labels: dict[str, set[str]] = {}
        for record in records:
            labels.setdefault(record["premise"], set()).add(record["label"])
        assert len(records) == pairs
        assert all(kinds == {"entailment", "neutral", "contradiction"} for kinds in labels.values())


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"the full sets are in {SHARED_DATA}, which is not there")
def test_the_sentence_samples_are_drawn_as_data_readme_says() -> None:
    def text(path):
        return path.read_text(encoding="utf-8")

    assert text(DATA / "korsts_train.tsv") == every_nth_row(text(SHARED_DATA / "korsts" / "sts-train.tsv"), 15)
    assert text(DATA / "korsts_dev.tsv") == every_nth_row(text(SHARED_DATA / "korsts" / "sts-dev.tsv"), 5)
    header, *rows = text(SHARED_DATA / "kornli" / "xnli.dev.ko.tsv").splitlines(keepends=True)
    kornli = header + "".join(every_nth_premise(rows, lambda row: row.split("\t")[0], 8))
    assert text(DATA / "kornli_dev.tsv") == kornli
    klue = json.loads(text(SHARED_DATA / "klue" / "klue-nli-v1.1_dev.json"))
    sample = json.loads(text(DATA / "klue_nli_dev.json"))
    assert sample == every_nth_premise(klue, lambda item: item["premise"], 10)
