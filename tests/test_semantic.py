"""The zero-shot check (:mod:`cleaning.model.semantic`, :mod:`cleaning.detect.semantic`): class names read
through WordNet over the backbone's own ImageNet head, on real photos, and the rule that stops a suggestion
the head does not see."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cleaning.detect.semantic import COVER, MASS_CLEAR, MASS_MIN, class_cover, contradicted, label_opinion
from cleaning.model.backbone import DEFAULT_ARCH
from cleaning.model.embed import embed_images
from cleaning.model.semantic import class_mass, name_members, name_terms
from tests.hostile import load_photo


def test_class_names_are_read_as_wordnet_nouns_over_imagenet_classes() -> None:
    assert name_terms("Birds") == ["birds", "bird"] and name_terms("sun_photo") == ["sun photo"]
    m = name_members(["bird", "Birds", "cat", "fruit", "sun photo", "7"])
    assert (m[0] == m[1]).all() and 50 <= m[0].sum() <= 70  # every ImageNet bird, whatever the plural
    assert m[2].sum() >= 5 and m[3].sum() >= 10
    assert not m[4].any() and not m[5].any()  # no noun over any ImageNet class: the check stays off


def test_the_head_sees_a_cat_in_the_cat_photo_and_not_in_the_coffee(tmp_path: Path) -> None:
    paths = []
    for name in ("chelsea", "coffee"):
        load_photo(name).save(tmp_path / f"{name}.jpg")
        paths.append(tmp_path / f"{name}.jpg")
    x = embed_images(paths).embeddings
    mass = class_mass(x, ["cat", "cup", "digit 7"], DEFAULT_ARCH)
    assert mass is not None and mass.shape == (2, 3)
    assert mass[0, 0] > 0.5 and mass[1, 0] < MASS_MIN  # chelsea is a tabby; the coffee is no cat
    assert mass[1, 1] > mass[0, 1]  # the espresso is in a cup
    assert np.isnan(mass[:, 2]).all()
    assert class_mass(x, ["0", "1"], DEFAULT_ARCH) is None


def test_a_suggestion_the_head_does_not_see_in_a_class_it_knows_is_contradicted() -> None:
    y = np.repeat([0, 1, 2], 12)
    mass = np.full((36, 3), 0.5)
    mass[12:18, 1] = 0.01  # half of class 1 carries none of its mass: the head does not know class 1 here
    mass[:, 2] = np.nan  # class 2's name matched no ImageNet class
    flagged = np.zeros(36, bool)
    flagged[[30, 31, 32]] = True  # three images of class 2 the label check would move ...
    suggested = np.zeros(36, np.int64)
    suggested[[30, 31, 32]] = [0, 1, 2]  # ... to class 0, class 1, and nowhere new
    mass[30, 0] = mass[31, 1] = 0.01  # the head sees neither class in them
    cover = class_cover(mass, y, flagged)
    assert cover[0] == 1.0 and cover[1] == 0.5 and np.isnan(cover[2])
    assert cover[0] >= COVER > cover[1]
    assert np.flatnonzero(contradicted(mass, flagged, suggested, cover)).tolist() == [30]  # class 0 only: known
    mass[30, 0] = 2 * MASS_MIN
    assert not contradicted(mass, flagged, suggested, cover).any()  # it does see some class 0 in it
    assert not contradicted(None, flagged, suggested, None).any()


def test_the_head_is_read_without_torch_and_equals_torch_load(tmp_path: Path) -> None:
    """The scan does not import torch (≈ 0.5 GB): the head comes from the converted weights file read as a zip."""
    import pickle
    import subprocess
    import sys

    import pytest
    import torch

    from cleaning.model.backbone import weights_file
    from cleaning.model.semantic import read_torch_zip

    state = torch.load(weights_file(DEFAULT_ARCH), map_location="cpu", weights_only=True)
    got = read_torch_zip(weights_file(DEFAULT_ARCH), ["classifier.weight", "classifier.bias", "conv_stem.weight"])
    for name, arr in got.items():
        assert np.array_equal(arr, state[name].numpy()), name
    torch.save({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3).t()}, tmp_path / "t.pth")  # strided
    assert read_torch_zip(tmp_path / "t.pth", ["w"])["w"].tolist() == [[0, 3], [1, 4], [2, 5]]
    torch.save({"w": torch.nn.Linear(2, 2)}, tmp_path / "module.pth")  # not a plain state dict: refused
    with pytest.raises(pickle.UnpicklingError):
        read_torch_zip(tmp_path / "module.pth", ["w"])
    code = ("import sys, numpy as np; from cleaning.model.semantic import class_mass; "
            "m = class_mass(np.eye(2, 1280, dtype=np.float32), ['bird', 'cat'], 'tf_efficientnet_lite0'); "
            "print(m.shape, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "False" and out[0] == "(2,"


def test_the_head_drops_a_flag_on_what_it_clearly_sees_and_adds_one_on_what_it_clearly_sees_instead() -> None:
    y = np.repeat([0, 1, 2], 12)
    mass = np.zeros((36, 3))
    mass[y == 0, 0] = mass[y == 1, 1] = 0.6  # classes 0 and 1 known (every member carries its class) ...
    mass[:, 2] = np.nan  # ... class 2's name matched nothing
    flagged = np.zeros(36, bool)
    suggested = np.where(y == 0, 1, 0)
    flagged[[0, 1]] = True  # the label check would move two class-0 images to class 1
    mass[1, 0] = 0.02  # the head clearly sees class 0 in image 0, none in image 1
    mass[1, 1] = 0.7
    mass[[13, 14], 1] = 0.01  # two unflagged class-1 images in which the head sees no class 1 ...
    mass[13, 0] = 0.8  # ... and clearly class 0 (the check's best other class) in one of them
    mass[14, 0] = 0.3  # ... and only a little in the other
    seen, claimed = label_opinion(mass, y, flagged, suggested)
    drop, add = flagged & seen, ~flagged & claimed
    assert np.flatnonzero(drop).tolist() == [0]  # image 1 keeps its flag: the head agrees it is no class 0
    assert np.flatnonzero(add).tolist() == [13]
    assert claimed[1] and not (seen & claimed).any()  # image 1: the head sees the suggested class, none of its own
    assert MASS_CLEAR > 0.3 and MASS_MIN > 0.01
    flagged[24] = True  # class 2 is not known: its images get no opinion either way
    mass[24, 0] = 0.9
    suggested[24] = 0
    seen2, claimed2 = label_opinion(mass, y, flagged, suggested)
    assert not seen2[24] and not claimed2[24]
    assert not any(a.any() for a in label_opinion(None, y, flagged, suggested))


def test_an_unreadable_weights_file_turns_the_check_off_with_a_clear_error(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import pytest

    from cleaning.model import semantic
    from cleaning.model.backbone import BackboneUnavailable, converted_file
    from cleaning.review.analysis import _semantic

    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path))
    converted_file(DEFAULT_ARCH).parent.mkdir(parents=True)
    converted_file(DEFAULT_ARCH).write_bytes(b"<html>not a zip</html>")
    assert converted_file(DEFAULT_ARCH).parent == tmp_path / "weights"
    semantic._head.cache_clear()
    try:
        with pytest.raises(BackboneUnavailable, match="cannot read the ImageNet head"):
            class_mass(np.eye(2, 1280, dtype=np.float32), ["bird"], DEFAULT_ARCH)
        semantic._head.cache_clear()
        assert _semantic(np.eye(2, 1280, dtype=np.float32), ["bird", "cat"]) is None  # the scan goes on without it
        kept = converted_file(DEFAULT_ARCH).with_name(f"{converted_file(DEFAULT_ARCH).stem}-imagenet-head.npz")
        kept.write_bytes(b"damaged")  # a kept head that no longer reads: off this time, removed for the next
        semantic._head.cache_clear()
        assert _semantic(np.eye(2, 1280, dtype=np.float32), ["bird"]) is None and not kept.exists()
    finally:
        semantic._head.cache_clear()


def test_the_head_preferring_the_given_class_twice_over_drops_a_label_flag() -> None:
    """The banana filed under *fruit* that classifier and neighbours call a vegetable: the head gives fruit 0.27 and
    vegetable 0.09 — not clearly fruit, but twice as much fruit as vegetable."""
    from cleaning.detect.semantic import MASS_PREFER, PREFER_RATIO, prefers_given

    y = np.repeat([0, 1], 12)
    mass = np.zeros((24, 2))
    mass[y == 0, 0] = mass[y == 1, 1] = 0.6  # both classes known
    suggested = 1 - y
    flagged = np.zeros(24, bool)
    flagged[[0, 1, 2, 3]] = True
    mass[0] = (MASS_PREFER + 0.07, MASS_PREFER / PREFER_RATIO - 0.01)  # prefers the given class: flag dropped
    mass[1] = (MASS_PREFER + 0.07, MASS_PREFER)  # not twice the suggested class: kept
    mass[2] = (MASS_PREFER - 0.05, 0.0)  # too little of the given class: kept
    mass[3] = (0.02, 0.7)  # sees the suggested class: kept
    assert np.flatnonzero(prefers_given(mass, y, flagged, suggested) & flagged).tolist() == [0]
    mass[4:12, 0] = 0.0  # class 0 no longer known to the head (most members carry none of it) ...
    assert prefers_given(mass, y, flagged, suggested)[0]  # ... but class 1, the suggestion, is: the comparison holds
    mass[4:, 1] = 0.0  # neither class known: no opinion
    assert not prefers_given(mass, y, flagged, suggested).any()
    assert not prefers_given(None, y, flagged, suggested).any()
