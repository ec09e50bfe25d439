"""Embeddings (real model, small inputs), the per-content embedding cache, the npz cache and the
2-D projection with its cache."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cleaning.model.embed as embed
import cleaning.model.engines as embed_engines
import cleaning.model.projection as project
from cleaning.data.cache import EmbeddingTable, fingerprint, load_arrays, save_arrays
from cleaning.data.images import UnreadableImage
from cleaning.errors import CleaningError

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo" / "data"


@pytest.fixture(autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANING_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def _demo(label: str, n: int) -> list[Path]:
    return sorted((DEMO / label).glob("*.jpg"))[:n]


def test_embeddings_are_n_by_1280_float32_unit_rows() -> None:
    paths = _demo("bird", 3) + _demo("fruit", 3)
    e = embed.compute_embeddings(paths)
    assert e.shape == (6, 1280) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embed.compute_embeddings(paths[::-1])[::-1], e, atol=1e-5)  # order-free
    sims = e @ e.T
    assert sims[0, 1] > sims[0, 4]  # bird is nearer bird than fruit (here: these two files)


def test_openvino_onnx_and_torch_give_the_same_embeddings() -> None:
    """Every runtime gives the same rows: OpenVINO (the default) in float32 equals ONNX Runtime to rounding
    (in bfloat16, which it picks by itself on CPUs with AMX, it would not: cosine 0.97)."""
    paths = _demo("mammal", 4) + _demo("fruit", 4)
    assert embed_engines.resolve_method("auto") == "openvino"
    v = embed.compute_embeddings(paths, method="openvino")
    a = embed.compute_embeddings(paths, method="onnx")
    b = embed.compute_embeddings(paths, method="eager")
    c = embed.compute_embeddings(paths, method="channels_last", batch_size=3)
    assert (v * a).sum(axis=1).min() > 0.99999
    assert (a * b).sum(axis=1).min() > 0.9999 and (a * c).sum(axis=1).min() > 0.9999


def test_an_openvino_that_cannot_load_the_model_falls_back_to_onnx_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU or model OpenVINO cannot handle (simulated: its compile raises as OpenVINO does) must not stop a
    scan: ``auto`` warns once and runs ONNX Runtime from then on; asking for OpenVINO by name is an error."""
    def unsupported(path: Path, threads: int, lanes: int) -> None:
        raise RuntimeError("Exception from src/inference/src/core.cpp: unsupported")

    monkeypatch.setattr(embed_engines, "_openvino_engine", unsupported)
    monkeypatch.setattr(embed_engines, "_ENGINES", {})
    monkeypatch.setattr(embed_engines, "_FAILED", set())
    paths = _demo("bird", 2)
    with pytest.warns(UserWarning, match="using ONNX Runtime"):
        e = embed.compute_embeddings(paths)
    assert isinstance(embed_engines.get_engine(threads=1), embed_engines.OnnxEngine)
    assert embed_engines.resolve_method("auto") == "onnx"
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    with pytest.raises(CleaningError, match="OpenVINO cannot run"):
        embed_engines.get_engine(method="openvino", threads=2)


def test_unreadable_files_are_collected_or_raised(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"<html>not an image</html>")
    good = _demo("bird", 2)
    res = embed.embed_images([good[0], bad, good[1]])
    assert list(res.errors) == [1] and "HTML" in res.errors[1]
    assert res.ok.tolist() == [True, False, True] and not res.embeddings[1].any()
    with pytest.raises(UnreadableImage, match="bad.jpg"):
        embed.compute_embeddings([good[0], bad])


def test_lanes_equal_one_engine_in_order_with_failures_in_place(tmp_path: Path) -> None:
    """Two single-thread lanes (the ONNX default on 2+ cores) give the rows, order and failures of one lane;
    a bad file inside a middle batch keeps its index."""
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"<html>not an image</html>")
    good = _demo("bird", 6) + _demo("fruit", 6) + _demo("mammal", 6)
    paths = good[:9] + [bad] + good[9:]
    seen: list[int] = []
    threads: dict[int, set[int]] = {1: set(), 2: set()}
    lanes = embed.embed_images(paths, batch_size=4, threads=2, progress=lambda d, n: seen.append(d),
                               on_decoded=lambda i, im: threads[2].add(threading.get_ident()))
    one = embed.embed_images(paths, batch_size=4, threads=1,
                             on_decoded=lambda i, im: threads[1].add(threading.get_ident()))
    assert len(threads[2]) == 2 and len(threads[1]) == 1  # two lanes decoded side by side, then one
    # ... and ran side by side: OpenVINO runs one call per stream at a time, so two lanes need two streams
    assert embed_engines.get_engine(threads=1, lanes=2).compiled.get_property("NUM_STREAMS") == 2
    assert list(lanes.errors) == list(one.errors) == [9]
    assert seen == sorted(seen) and seen[-1] == len(paths)  # progress in order, to the end
    keep = one.ok
    assert (lanes.embeddings[keep] * one.embeddings[keep]).sum(axis=1).min() > 0.99999
    assert not lanes.embeddings[9].any()


def test_openvino_lanes_specialise_a_new_input_shape_one_at_a_time() -> None:
    """A lane's first call at a shape its request has not run waits for any other such call (two at once hung
    once on 2 cores, ``OpenVinoEngine``); a call at a shape it has run does not wait."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as Waiting

    eng = embed_engines.get_engine(threads=1, lanes=2)
    assert isinstance(eng, embed_engines.OpenVinoEngine)
    size = 224
    x3, x5 = (np.zeros((n, 3, size, size), np.float32) for n in (3, 5))
    with ThreadPoolExecutor(1) as a, ThreadPoolExecutor(1) as b:
        ref = a.submit(eng, x3).result(timeout=120)  # lane a has run shape 3
        with eng.specialise:
            again = a.submit(eng, x3)
            np.testing.assert_allclose(again.result(timeout=120), ref, atol=1e-5)  # a seen shape runs at once
            first = b.submit(eng, x5)  # lane b's first call: waits its turn
            with pytest.raises(Waiting):
                first.result(timeout=1.0)
        assert first.result(timeout=120).shape == (5, ref.shape[1])


def test_exif_rotation_and_alpha_are_applied(tmp_path: Path) -> None:
    src = Image.open(_demo("mammal", 1)[0]).convert("RGB")
    upright = tmp_path / "upright.png"
    src.save(upright)
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # camera held sideways: display = stored image rotated 90° clockwise
    src.transpose(Image.Transpose.ROTATE_90).save(rotated, quality=95, exif=exif)
    e = embed.compute_embeddings([upright, rotated])
    assert float(e[0] @ e[1]) > 0.9
    im = embed.load_for_model(rotated, 64)
    assert im.size == (64, 64) and im.mode == "RGB"


def test_npz_cache_round_trip_and_torn_files(tmp_path: Path) -> None:
    key = fingerprint("x", [1, 2], {"b": 1, "a": 2})
    assert key == fingerprint("x", [1, 2], {"a": 2, "b": 1}) != fingerprint("x", [2, 1], {"a": 2, "b": 1})
    save_arrays(tmp_path, "t", key, a=np.arange(3))
    assert load_arrays(tmp_path, "t", key)["a"].tolist() == [0, 1, 2]
    assert load_arrays(tmp_path, "t", "missing") is None
    (tmp_path / "t-torn.npz").write_bytes(b"PK\x03\x04 torn")
    assert load_arrays(tmp_path, "t", "torn") is None
    for i in range(10):
        save_arrays(tmp_path, "many", str(i), keep=3, a=np.zeros(1))
    assert len(list(tmp_path.glob("many-*.npz"))) == 3


def test_embedding_table_keeps_rows_per_content(tmp_path: Path) -> None:
    t = EmbeddingTable(tmp_path, "m", 4)
    t.add(["s1", "s2"], np.eye(4, dtype=np.float32)[:2], failed={"s3": "broken"})
    t.save()
    t2 = EmbeddingTable(tmp_path, "m", 4)
    assert t2.missing(["s1", "s3", "s4", "s4"]) == ["s4"]
    np.testing.assert_array_equal(t2.get(["s2", "s1"]), np.eye(4)[[1, 0]])
    assert t2.failed == {"s3": "broken"}


def test_embedding_table_holds_its_rows_once(tmp_path: Path) -> None:
    """Rows added in chunks live in one buffer; every row in table order is a view of it, not a copy
    (at 100,000 images each copy is 0.5 GB: blocks + joined matrix + gathered copy peaked at 3.08 GB)."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(10, 4)).astype(np.float32)
    shas = [f"s{i}" for i in range(10)]
    t = EmbeddingTable(tmp_path, "m", 4)
    t.reserve(10)
    buf = t._buf
    for c in range(0, 10, 3):  # four chunks, as the embedding step adds them
        t.add(shas[c:c + 3], rows[c:c + 3])
        t.save_part()
    assert t._buf is buf  # reserved once: never copied
    every = t.get(shas)
    assert np.shares_memory(every, t.matrix) and np.array_equal(every, rows)
    np.testing.assert_array_equal(t.get(["s9", "s0"]), rows[[9, 0]])
    assert not np.shares_memory(t.get(["s9", "s0"]), t.matrix)
    t.add(["s10", "s3", "s10"], rng.normal(size=(3, 4)).astype(np.float32))  # grows; s3 kept; s10 once
    assert t.get(["s3"]).tolist() == rows[[3]].tolist() and len(t.matrix) == 11
    t.save()
    back = EmbeddingTable(tmp_path, "m", 4)
    assert np.array_equal(back.get(shas), rows) and np.shares_memory(back.get(shas + ["s10"]), back.matrix)


# ---- the workspace caches --------------------------------------------------------------------------
@pytest.fixture
def ws(tmp_path: Path):  # noqa: ANN201
    from cleaning.data.workspace import Workspace

    root = tmp_path / "data"
    for label in ("bird", "fruit"):
        (root / label).mkdir(parents=True)
        for p in _demo(label, 6):
            shutil.copy(p, root / label / p.name)
    shutil.copy(root / "bird" / _demo("bird", 1)[0].name, root / "bird" / "copy.jpg")  # an exact duplicate
    return Workspace.open(root)


def _count_embedded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = embed.embed_images

    def spy(paths, *a, **k):  # noqa: ANN001, ANN202
        calls.append(len(paths))
        return real(paths, *a, **k)

    monkeypatch.setattr(embed, "embed_images", spy)
    return calls


def test_embeddings_cached_per_image_content(ws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    calls = _count_embedded(monkeypatch)
    first = embed.load_or_compute_embeddings(ws)
    assert calls == [12]  # 13 items, 12 distinct contents
    assert len(first.item_ids) == 13 and first.embeddings.shape == (13, 1280)
    frame = ws.items_frame().set_index("item_id")
    assert first.item_ids == list(ws.items_frame()["item_id"])  # aligned to items_frame rows

    ws.store.record([first.item_ids[0]], "relabel", label="fruit")
    ws.store.record([first.item_ids[1]], "delete")
    after = embed.load_or_compute_embeddings(ws)
    assert calls == [12] and len(after.item_ids) == 12  # nothing embedded; the deleted row left out

    shutil.copy(_demo("mammal", 1)[0], Path(ws.root) / "fruit" / "new.jpg")
    ws.refresh()
    grown = embed.load_or_compute_embeddings(ws)
    assert calls == [12, 1] and len(grown.item_ids) == 13
    sha = frame.loc[first.item_ids[2], "sha256"]
    np.testing.assert_array_equal(grown.embeddings[grown.item_ids.index(first.item_ids[2])],
                                  first.embeddings[list(frame.index).index(first.item_ids[2])])
    assert sha  # rows are looked up by content


def test_the_tapped_block_is_kept_beside_the_embeddings(ws, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """``tap=True``: block 5's pooled rows in a second table, computed in the same pass; a cache made without the
    tap gets its block rows on the next tapped call, its embeddings unchanged; then nothing is embedded again."""
    calls = _count_embedded(monkeypatch)
    plain = embed.load_or_compute_embeddings(ws, tap=False)
    assert calls == [12] and plain.mid is None
    tapped = embed.load_or_compute_embeddings(ws, tap=True)
    assert calls == [12, 12]  # the old cache had no block rows
    assert tapped.item_ids == plain.item_ids and tapped.mid is not None and tapped.mid.shape == (13, 192)
    np.testing.assert_array_equal(tapped.embeddings, plain.embeddings)
    np.testing.assert_allclose(np.linalg.norm(tapped.mid, axis=1), 1.0, atol=1e-5)
    paths = [Path(ws.root) / p for p in ws.items_frame().set_index("item_id").loc[tapped.item_ids, "path"]]
    np.testing.assert_allclose(embed_engines.embed_images(paths[:3], tap=True).mid, tapped.mid[:3], atol=1e-5)
    again = embed.load_or_compute_embeddings(ws)  # by default with the tap at this size
    assert calls == [12, 12]
    np.testing.assert_array_equal(again.mid, tapped.mid)


def test_by_default_one_pass_fills_both_tables_up_to_tap_max(ws, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Whichever step embeds first (the map, the out-of-sample heads, the scan), small data sets get the block's
    rows in the same pass, so the scan never embeds the images a second time; above TAP_MAX no block rows."""
    calls = _count_embedded(monkeypatch)
    first = embed.load_or_compute_embeddings(ws, include_deleted=True)
    assert calls == [12] and first.mid is not None and first.mid.shape == (13, 192)
    assert embed.load_or_compute_embeddings(ws, tap=True).mid is not None and calls == [12]
    monkeypatch.setattr(embed, "TAP_MAX", 5)
    assert embed.load_or_compute_embeddings(ws).mid is None and calls == [12]


def test_the_embedding_step_releases_its_compiled_backbone(ws) -> None:  # noqa: ANN001
    """An OpenVINO engine holds ≈ 200 MB more than a shrunk ONNX Runtime arena: once the step has embedded what
    was missing, no compiled engine stays cached for the heads, the detectors or a hosted server's idle time."""
    embed_engines.get_engine(threads=1, lanes=2)  # one compiled before, as a lanes run leaves it
    assert any(isinstance(e, embed_engines.OpenVinoEngine) for e in embed_engines._ENGINES.values())
    got = embed.load_or_compute_embeddings(ws)
    assert got.embeddings.shape == (13, 1280)
    assert not any(isinstance(e, embed_engines.OpenVinoEngine) for e in embed_engines._ENGINES.values())
    again = embed.embed_images([Path(ws.root) / "bird" / "copy.jpg"])  # the next call compiles again
    np.testing.assert_allclose(again.embeddings[0], got.embeddings[got.item_ids.index(
        ws.items_frame().set_index("path").loc["bird/copy.jpg", "item_id"])], atol=1e-5)


def test_a_compiled_backbone_stays_while_another_step_still_embeds() -> None:
    """Two visitors' scans on one hosted server: the first step to end must not drop the engine the other is
    still using (it would compile a second one, ≈ 200 MB more, for its next chunk); the last to end drops it."""
    def compiled() -> list:
        return [e for e in embed_engines._ENGINES.values() if isinstance(e, embed_engines.OpenVinoEngine)]

    with embed_engines.engines_in_use():
        first = embed_engines.get_engine(threads=1, lanes=2)
        with embed_engines.engines_in_use():  # the other visitor's step starts and ends inside the first one's
            assert embed_engines.get_engine(threads=1, lanes=2) is first
        assert compiled() == [first]  # still cached for the step that is running
    assert compiled() == []


def test_projection_methods_and_small_inputs() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 16)).astype(np.float32)
    for method in ("umap", "tsne"):
        xy = project.compute_projection(x, method)
        assert xy.shape == (40, 2) and np.isfinite(xy).all()
    assert project.compute_projection(x[:3]).shape == (3, 2)
    assert project.compute_projection(x[:0]).shape == (0, 2)
    with pytest.raises(Exception, match="unknown projection"):
        project.compute_projection(x, "pca3d")


def test_projection_cached_and_stable_under_decisions(ws, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    calls: list[str] = []
    real = project.compute_projection
    monkeypatch.setattr(project, "compute_projection", lambda x, m="umap", s=0: calls.append(m) or real(x, m, s))
    first = project.load_or_compute_projection(ws)
    assert calls == ["umap"] and first.xy.shape == (13, 2)
    ids = first.item_ids
    dup = ws.items_frame().set_index("item_id")["sha256"]
    same = [i for i in ids if dup[i] == dup[ids[0]]]
    if len(same) == 2:  # exact duplicates share one point
        np.testing.assert_array_equal(first.xy[ids.index(same[0])], first.xy[ids.index(same[1])])
    ws.store.record([ids[3]], "delete")
    ws.store.record([ids[4]], "relabel", label="fruit")
    second = project.load_or_compute_projection(ws)
    assert calls == ["umap"] and ids[3] not in second.item_ids  # no recompute; points do not move
    np.testing.assert_array_equal(second.xy[second.item_ids.index(ids[5])], first.xy[ids.index(ids[5])])
    project.load_or_compute_projection(ws, method="tsne")
    assert calls == ["umap", "tsne"]


def test_batch_normalisation_is_bit_for_bit_the_whole_array_definition() -> None:
    """to_array works per channel into its output (issue 15); the numbers are those of the plain definition."""
    ims = [embed.load_for_model(p, 96) for p in _demo("bird", 5) + _demo("fruit", 4)]
    for mean, std in [((0.5,) * 3, (0.5,) * 3), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]:
        x = np.stack([np.asarray(im, dtype=np.uint8) for im in ims]).astype(np.float32)
        x *= 1.0 / 255.0
        x -= np.asarray(mean, dtype=np.float32)
        x /= np.asarray(std, dtype=np.float32)
        want = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        got = embed.to_array(ims, mean, std)
        assert got.shape == (9, 3, 96, 96) and got.dtype == np.float32 and got.flags.c_contiguous
        assert np.array_equal(got, want)
