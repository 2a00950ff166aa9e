"""The bundled data: sizes, formats, balance, and no review shared between pretraining and NSMC samples."""

from __future__ import annotations

from conftest import BUNDLED_REVIEWS, ROOT, read_lines

from finetune.data_io import read_nsmc

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
