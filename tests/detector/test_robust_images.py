"""Robust image matching: descriptor, float and local-feature indexes, verification,
the calibrated decision, training, the benchmark's metrics, and the store wiring."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from ansim.detector.image_decision import (
    Evidence,
    Thresholds,
    calibrate,
    decide,
    decision_precision,
    threshold_for_precision,
)
from ansim.detector.local_verify import LocalFeatures, Verification
from ansim.indexer.descriptor_index import BruteForceDescriptorIndex, FaissDescriptorIndex
from ansim.indexer.local_feature_index import BruteForceLocalFeatureIndex, FaissLocalFeatureIndex
from ansim.indexer.persisted import PersistedIndex
from PIL import Image

BSDS_TEST = "images/bsds500/test"


def shared_photo(shared_data: Path, name: str) -> Image.Image:
    path = shared_data / BSDS_TEST / name
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return Image.open(path).convert("RGB")


def crop_and_paste(photo: Image.Image, background: Image.Image) -> Image.Image:
    """Keep the middle 70% of the area, shrink it to half the background's width, paste."""
    width, height = photo.size
    side = 0.7**0.5
    left, top = round(width * (1 - side) / 3), round(height * (1 - side) / 2)
    cropped = photo.crop((left, top, left + round(width * side), top + round(height * side)))
    scale = background.width * 0.5 / cropped.width
    cropped = cropped.resize((round(cropped.width * scale), round(cropped.height * scale)))
    canvas = background.copy()
    canvas.paste(cropped, (background.width // 3, background.height // 5))
    return canvas


# --- descriptor network ------------------------------------------------------------------


def test_descriptor_has_its_shape_and_unit_length() -> None:
    torch = pytest.importorskip("torch")
    from ansim.models.descriptor import CopyDescriptor, DescriptorConfig, preprocess

    config = DescriptorConfig()
    network = CopyDescriptor(config).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((90, 300), (500, 40))]
    batch = torch.stack([preprocess(image, config.input_size) for image in images])
    with torch.inference_mode():
        vectors = network(batch).numpy()
    assert vectors.shape == (2, config.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_trained_descriptor_places_a_copy_nearer_than_other_photos(shared_data: Path) -> None:
    from ansim.benchmarks.image_transforms import HARD_TRANSFORMS
    from ansim.detector.descriptor import load_descriptor_model

    model = load_descriptor_model()
    if model is None:
        pytest.skip("the descriptor weights are not installed")
    names = ["100007.jpg", "107072.jpg", "128035.jpg", "16068.jpg", "2018.jpg"]
    photos = [shared_photo(shared_data, name) for name in names]
    references = model.describe_batch([np.asarray(p) for p in photos])
    assert np.allclose(np.linalg.norm(references, axis=1), 1.0, atol=1e-5)
    copy = HARD_TRANSFORMS["crop20+rotate15"](photos[0], random.Random(1), photos[1:])
    query = model.describe(np.asarray(copy))
    assert query.vector.shape == (model.dim,)
    similarities = references @ query.vector
    assert similarities.argmax() == 0
    assert query.to_blob() and len(query.to_blob()) == 4 * model.dim


# --- indexes and their brute-force twins -----------------------------------------------------


def unit_vectors(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    vectors = rng.normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def same_hits(fast: list, slow: list) -> bool:
    if [[h.entry_id for h in row] for row in fast] != [[h.entry_id for h in row] for row in slow]:
        return False
    return all(
        abs(a.similarity - b.similarity) < 1e-4
        for row_a, row_b in zip(fast, slow, strict=True)
        for a, b in zip(row_a, row_b, strict=True)
    )


def test_descriptor_index_agrees_with_brute_force_through_add_remove_and_reload(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(7)
    dim = 32
    vectors = unit_vectors(rng, 400, dim)
    ids = list(range(1000, 1400))
    persisted = PersistedIndex(
        tmp_path / "descriptor.index", FaissDescriptorIndex.load, lambda: FaissDescriptorIndex(dim)
    )
    slow = BruteForceDescriptorIndex(dim)
    with persisted.write() as fast:
        fast.add(ids[:250], vectors[:250])
    with persisted.write() as fast:
        fast.add(ids[250:], vectors[250:])
    slow.add(ids, vectors)
    # Queries near stored vectors, and random ones.
    queries = np.concatenate(
        [vectors[::40] + 0.05 * rng.normal(size=(10, dim)), unit_vectors(rng, 10, dim)]
    )
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    assert same_hits(persisted.read().search(queries, 5), slow.search(queries, 5))
    assert same_hits(persisted.read().search(queries, 50, 0.3), slow.search(queries, 50, 0.3))
    gone = ids[::3]
    with persisted.write() as fast:
        assert fast.remove(gone) == len(gone)
    assert slow.remove(gone) == len(gone)
    reloaded = PersistedIndex(
        tmp_path / "descriptor.index", FaissDescriptorIndex.load, lambda: FaissDescriptorIndex(dim)
    ).read()
    assert len(reloaded) == len(slow) == 400 - len(gone)
    assert same_hits(reloaded.search(queries, 8), slow.search(queries, 8))
    assert all(h.entry_id not in set(gone) for row in reloaded.search(queries, 50) for h in row)


def random_features(rng: np.random.Generator, count: int) -> LocalFeatures:
    return LocalFeatures(
        points=rng.uniform(0, 400, (count, 2)).astype(np.float32),
        descriptors=rng.integers(0, 256, (count, 32), dtype=np.uint8),
        width=400,
        height=300,
    )


def noisy_copy(rng: np.random.Generator, features: LocalFeatures, keep: int) -> LocalFeatures:
    """`keep` of the entry's descriptors with a few bits flipped, plus as many random ones."""
    rows = rng.choice(len(features), keep, replace=False)
    copied = features.descriptors[rows].copy()
    flips = rng.integers(0, 256, (keep, 4))
    for row, bits in enumerate(flips):
        for bit in bits:
            copied[row, bit // 8] ^= 1 << (bit % 8)
    noise = rng.integers(0, 256, (keep, 32), dtype=np.uint8)
    return LocalFeatures(
        np.zeros((2 * keep, 2), np.float32), np.concatenate([copied, noise]), 400, 300
    )


def local_feature_queries(rng: np.random.Generator, entries: dict[int, LocalFeatures]) -> list:
    queries = [noisy_copy(rng, entries[e], keep) for e, keep in ((20, 60), (25, 12), (31, 4))]
    return [*queries, random_features(rng, 200)]


def test_local_feature_index_agrees_with_brute_force(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    entries = {entry: random_features(rng, 128) for entry in range(20, 32)}
    fast = FaissLocalFeatureIndex()
    slow = BruteForceLocalFeatureIndex()
    for index in (fast, slow):
        index.add(list(entries), list(entries.values()))
    assert not fast.uses_inverted_file
    queries = local_feature_queries(rng, entries)
    found = fast.search(queries, k=3)
    assert found == slow.search(queries, k=3)
    assert [row[0].entry_id if row else None for row in found] == [20, 25, 31, None]
    assert found[0][0].votes > found[1][0].votes
    assert fast.remove([20, 25, 999]) == slow.remove([20, 25, 999]) == 2
    fast.save(tmp_path / "local.index")
    reloaded = FaissLocalFeatureIndex.load(tmp_path / "local.index")
    assert len(reloaded) == len(slow) == 10
    assert reloaded.search(queries, k=3) == slow.search(queries, k=3)
    assert reloaded.search(queries, k=3)[0] == []


def forty_entries_past_the_inverted_file_threshold(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> tuple[np.random.Generator, dict[int, LocalFeatures]]:
    """40 entries of 128 codes, with the inverted file starting at 2,000 codes."""
    import ansim.indexer.local_feature_index as module

    monkeypatch.setattr(module, "IVF_MIN_CODES", 2000)
    rng = np.random.default_rng(seed)
    return rng, {entry: random_features(rng, 128) for entry in range(40)}


def test_inverted_file_local_index_agrees_with_brute_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng, entries = forty_entries_past_the_inverted_file_threshold(monkeypatch, 4)
    slow = BruteForceLocalFeatureIndex()
    slow.add(list(entries), list(entries.values()))
    approximate = FaissLocalFeatureIndex()
    approximate.add(list(entries)[:10], list(entries.values())[:10])  # flat while small
    approximate.add(list(entries)[10:], list(entries.values())[10:])  # then trained IVF
    assert approximate.uses_inverted_file
    queries = local_feature_queries(rng, entries)
    # Probing every list makes the inverted file exact: it must equal the twin.
    approximate.save(tmp_path / "ivf.index")
    with np.load(tmp_path / "ivf.index") as data:
        from ansim.indexer.local_feature_index import _StoredCodes

        exact = FaissLocalFeatureIndex(_StoredCodes(data["codes"], data["owners"]), nprobe=4096)
    assert exact.search(queries, k=3) == slow.search(queries, k=3)
    # With its default probes it still puts every copy first.
    top = [row[0].entry_id if row else None for row in approximate.search(queries, k=3)]
    assert top == [20, 25, 31, None]
    assert approximate.remove([20]) == slow.remove([20]) == 1
    assert all(hit.entry_id != 20 for row in approximate.search(queries, k=5) for hit in row)


def test_a_saved_inverted_file_loads_without_retraining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retraining on load took minutes for a crawl history: the trained structure is saved."""
    rng, entries = forty_entries_past_the_inverted_file_threshold(monkeypatch, 5)
    index = FaissLocalFeatureIndex()
    index.add(list(entries), list(entries.values()))
    assert index.uses_inverted_file
    queries = local_feature_queries(rng, entries)
    index.save(tmp_path / "ivf.index")

    def no_training(self: FaissLocalFeatureIndex) -> None:
        raise AssertionError("retrained on load")

    monkeypatch.setattr(FaissLocalFeatureIndex, "_build", no_training)
    loaded = FaissLocalFeatureIndex.load(tmp_path / "ivf.index")
    assert loaded.uses_inverted_file and len(loaded) == 40
    assert loaded.search(queries, k=3) == index.search(queries, k=3)
    assert loaded.remove([20]) == 1
    assert all(hit.entry_id != 20 for row in loaded.search(queries, k=5) for hit in row)


def test_local_features_survive_their_blob() -> None:
    rng = np.random.default_rng(1)
    features = random_features(rng, 57)
    back = LocalFeatures.from_blob(features.to_blob())
    assert (back.width, back.height) == (400, 300)
    assert np.array_equal(back.descriptors, features.descriptors)
    assert np.allclose(back.points, features.points, atol=0.25)
    with pytest.raises(ValueError):
        LocalFeatures.from_blob(b"JUNK" + bytes(20))
    split = LocalFeatures(features.points, features.descriptors, 400, 300, fine=40)
    assert LocalFeatures.from_blob(split.to_blob()).fine_count == 40


# --- geometric verification ---------------------------------------------------------------


def test_keypoints_are_spread_over_the_grid_strongest_first(shared_data: Path) -> None:
    """Keypoints are taken round robin over an 8x8 grid (a textured corner cannot take
    every keypoint), and the selection repeats exactly."""
    from collections import Counter

    import cv2
    from ansim.detector.image import load_rgb
    from ansim.detector.local_verify import DETECTION_POOL, _grey, _spread_orb

    grey = _grey(load_rgb(shared_data / "images" / "kodak24" / "kodim01.png"), 512)
    kept = _spread_orb(grey, 300)
    height, width = grey.shape
    orb = cv2.ORB_create(nfeatures=DETECTION_POOL, fastThreshold=7, edgeThreshold=19, patchSize=19)
    detected = orb.detect(grey, None)
    cell_of = {
        (round(kp.pt[0], 3), round(kp.pt[1], 3)): min(int(kp.pt[1] * 8 // height), 7) * 8
        + min(int(kp.pt[0] * 8 // width), 7)
        for kp in detected
    }
    kept_per_cell = Counter(
        cell_of[(round(float(x), 3), round(float(y), 3))] for x, y in kept.points
    )
    detected_per_cell = Counter(cell_of.values())
    assert len(detected_per_cell) >= 48
    assert set(kept_per_cell) == set(detected_per_cell)  # every occupied cell is kept
    # Round robin over the cells: those with detections to spare keep nearly equal shares.
    busy = [
        kept_per_cell[c] for c, n in detected_per_cell.items() if n > max(kept_per_cell.values())
    ]
    assert busy and max(busy) - min(busy) <= 1
    again = _spread_orb(grey, 300)
    assert np.array_equal(again.points, kept.points)
    assert np.array_equal(again.descriptors, kept.descriptors)


def test_verification_finds_a_cropped_and_pasted_copy_and_says_where(shared_data: Path) -> None:
    from ansim.benchmarks.image_transforms import HARD_TRANSFORMS
    from ansim.detector.local_verify import extract_local_features, verify

    reference = shared_photo(shared_data, "100007.jpg")
    background = shared_photo(shared_data, "2018.jpg")
    query = crop_and_paste(reference, background)
    result = verify(
        extract_local_features(np.asarray(query)), extract_local_features(np.asarray(reference))
    )
    assert result.geometry_ok
    assert result.inliers >= Thresholds.load().verification_min_inliers
    assert result.query_share < 0.4  # a quarter of the item, pasted inside another picture
    assert 0.4 < result.scale < 0.8
    assert abs(result.rotation_degrees) < 5
    assert "inside a larger picture" in result.describe()
    # A plain crop keeping 60% of the area reads as one.
    cropped = HARD_TRANSFORMS["crop40"](reference, random.Random(2), [])
    result = verify(
        extract_local_features(np.asarray(cropped)), extract_local_features(np.asarray(reference))
    )
    assert result.geometry_ok and 0.4 < result.visible_share < 0.75
    assert "cropped about" in result.describe()


def test_a_query_without_half_size_keypoints_still_finds_a_pasted_copy(
    shared_data: Path,
) -> None:
    """A crawled image (only ever a query) keeps its full-size keypoints alone: the copy
    shrunk inside it meets the reference's half-size ones."""
    from ansim.detector.local_verify import extract_local_features, verify

    reference = shared_photo(shared_data, "100007.jpg")
    query = crop_and_paste(reference, shared_photo(shared_data, "2018.jpg"))
    full = extract_local_features(np.asarray(query))
    fine = extract_local_features(np.asarray(query), coarse=False)
    assert len(fine) == fine.fine_count == full.fine_count < len(full)
    assert np.array_equal(fine.descriptors, full.descriptors[: full.fine_count])
    result = verify(fine, extract_local_features(np.asarray(reference)))
    assert result.geometry_ok
    assert result.inliers >= Thresholds.load().verification_min_inliers
    assert result.query_share < 0.4


def test_verification_places_the_reference_where_it_was_pasted(shared_data: Path) -> None:
    """The reference's frame projected into the item lands where `crop_and_paste` put it:
    its visible middle on the pasted box, its cropped-away margins beyond the box."""
    from ansim.detector.local_verify import extract_local_features, verify

    reference = shared_photo(shared_data, "100007.jpg")
    background = shared_photo(shared_data, "2018.jpg")
    query = crop_and_paste(reference, background)
    result = verify(
        extract_local_features(np.asarray(query)), extract_local_features(np.asarray(reference))
    )
    assert result.geometry_ok and len(result.corners) == 4
    # Where crop_and_paste puts the reference's corners (as shares of the item's sides).
    width, height = reference.size
    side = 0.7**0.5
    left, top = round(width * (1 - side) / 3), round(height * (1 - side) / 2)
    scale = background.width * 0.5 / round(width * side)
    x0, y0 = background.width // 3 - left * scale, background.height // 5 - top * scale
    expected = [(x0, y0), (x0 + width * scale, y0), (x0 + width * scale, y0 + height * scale)]
    expected.append((x0, y0 + height * scale))
    for (x, y), (ex, ey) in zip(result.corners, expected, strict=True):
        assert abs(x - ex / query.width) < 0.03 and abs(y - ey / query.height) < 0.03
    assert result.summary()["corners"] == [list(c) for c in result.corners]
    # No geometry, no region.
    other = shared_photo(shared_data, "16068.jpg")
    unrelated = verify(
        extract_local_features(np.asarray(other)), extract_local_features(np.asarray(reference))
    )
    assert not unrelated.geometry_ok and unrelated.corners == ()


def test_verification_rejects_look_alikes_that_are_not_copies(shared_data: Path) -> None:
    from ansim.detector.local_verify import extract_local_features, verify

    thresholds = Thresholds.load()
    photo = shared_photo(shared_data, "128035.jpg")
    width, height = photo.size
    # Two side-by-side shots of one scene: same light, colours and subject, no shared pixels.
    left = photo.crop((0, 0, int(width * 0.45), height))
    right = photo.crop((int(width * 0.55), 0, width, height))
    # The two photos of this set the descriptor found most alike (elephants and a snake).
    elephants = shared_photo(shared_data, "107072.jpg")
    snake = shared_photo(shared_data, "87015.jpg")
    for query, reference in ((right, left), (snake, elephants)):
        result = verify(
            extract_local_features(np.asarray(query)),
            extract_local_features(np.asarray(reference)),
        )
        assert not (result.geometry_ok and result.inliers >= thresholds.verification_min_inliers)
        assert not decide(Evidence(verification=result), thresholds).matched


# --- the decision and its calibration -----------------------------------------------------


def test_threshold_for_precision_picks_the_lowest_safe_value() -> None:
    positives = [0.95, 0.9, 0.85, 0.8, 0.6]
    negatives = [0.7, 0.5, 0.4]
    # Every value >= 0.8 is a true copy; 0.7 is the first false one: halfway is 0.75.
    assert threshold_for_precision(positives, negatives, 0.999) == pytest.approx(0.75)
    assert threshold_for_precision(positives, negatives, 0.8) == pytest.approx(0.55)
    assert threshold_for_precision([0.1], [0.9], 0.999) is None


def test_calibrated_decision_holds_its_precision_and_explains_itself() -> None:
    rng = np.random.default_rng(5)
    evidence, labels = [], []
    for _ in range(400):
        evidence.append(
            Evidence(
                pdq_distance=int(rng.integers(60, 130)),
                descriptor_similarity=float(rng.uniform(0.75, 1.0)),
                verification=Verification(40, int(rng.integers(15, 300)), geometry_ok=True),
            )
        )
        labels.append(True)
        evidence.append(
            Evidence(
                pdq_distance=int(rng.integers(90, 140)),
                descriptor_similarity=float(rng.uniform(0.2, 0.85)),
                verification=Verification(9, int(rng.integers(0, 25)), geometry_ok=True),
            )
        )
        labels.append(False)
    thresholds = calibrate(evidence, labels, 0.999, "test-model", "synthetic")
    assert decision_precision(evidence, labels, thresholds) >= 0.999
    assert 0.8 <= thresholds.descriptor_min_similarity <= 1.0
    assert 15 < thresholds.verification_min_inliers <= 40
    assert thresholds.measured["recall"] > 0.8
    strong = decide(
        Evidence(12, 0.5, Verification(200, 180, 0.7, 0.3, 5.0, 0.5, 0.4, True)), thresholds
    )
    assert strong.matched and set(strong.fired) == {"pdq", "verification"}
    assert "cropped about 30%" in strong.explanation and "PDQ 12 bits" in strong.explanation
    weak = decide(Evidence(100, 0.5, Verification(10, 5, geometry_ok=False)), thresholds)
    assert not weak.matched and weak.fired == [] and weak.explanation.startswith("no match")
    assert decide(Evidence(pdq_distance=31), thresholds).matched  # PDQ's own rule is kept
    assert not decide(Evidence(pdq_distance=32), thresholds).matched


def test_thresholds_file_round_trips(tmp_path: Path) -> None:
    thresholds = Thresholds(descriptor_min_similarity=0.8, verification_min_inliers=17)
    thresholds.save(tmp_path / "t.json")
    assert Thresholds.load(tmp_path / "t.json") == thresholds
    assert Thresholds.load(tmp_path / "missing.json") == Thresholds()


# --- training -----------------------------------------------------------------------------


def test_training_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ansim.models.descriptor import DescriptorConfig, load_weights
    from ansim.models.train import TrainConfig, checkpoint_path, train

    from tests.helpers import photo_like

    folder = tmp_path / "data" / "photos"
    folder.mkdir(parents=True)
    for seed in range(6):
        photo_like(folder / f"{seed}.png", seed)
    config = TrainConfig(
        data_root=tmp_path / "data",
        folders=("photos",),
        run_dir=tmp_path / "run",
        output=tmp_path / "weights.pt",
        steps=1,
        batch_size=4,
        warmup_steps=1,
        base_side=64,
        workers=0,
        log_every=1,
        model=DescriptorConfig(widths=(8, 8, 16, 16), dim=16, input_size=32),
    )
    train(config)
    import torch

    assert torch.load(checkpoint_path(config), weights_only=True)["step"] == 1
    config.steps = 2
    seen = []
    train(config, lambda report: seen.append(report.step))
    assert seen == [2]  # step 1 was not trained again
    network, recipe = load_weights(str(config.output))
    assert network.config.dim == 16 and recipe["steps"] == 2
    # Interrupted and resumed, or straight through: the same weights (batches are a pure
    # function of seed and step, the optimiser state travels in the checkpoint).
    config.run_dir, config.output = tmp_path / "straight", tmp_path / "straight.pt"
    train(config)
    straight, _ = load_weights(str(config.output))
    for name, tensor in straight.state_dict().items():
        assert torch.allclose(tensor.float(), network.state_dict()[name].float(), atol=1e-6), name
    config.run_dir = tmp_path / "run"
    config.model = DescriptorConfig(widths=(8, 8, 16, 32), dim=16, input_size=32)
    with pytest.raises(ValueError, match="another network shape"):
        train(config)


def test_training_refuses_a_folder_without_images(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ansim.models.train import TrainConfig, train

    with pytest.raises(FileNotFoundError, match="no training images"):
        train(TrainConfig(data_root=tmp_path, folders=("nothing",), run_dir=tmp_path / "r"))


# --- benchmark metrics --------------------------------------------------------------------


def test_bench_robust_runs_end_to_end_on_a_small_pool(shared_data: Path, tmp_path: Path) -> None:
    from ansim.benchmarks.robust_images import RobustBenchConfig, run_benchmark, write_report

    config = RobustBenchConfig(
        data_root=shared_data / "images",
        calibration_folders=("kodak24",),
        limit=6,
        transforms=("crop20", "paste", "jpeg30"),
    )
    result = run_benchmark(config, calibrate_first=True, thresholds_path=tmp_path / "t.json")
    write_report(result, tmp_path / "report")
    evaluation = result["evaluation"]
    assert set(evaluation) == {"all hard", "all easy", "crop20", "paste", "jpeg30"}
    assert evaluation["jpeg30"]["pdq"]["recall_at_target"] == 1.0
    assert evaluation["all hard"]["full"]["recall_at_target"] >= 0.5
    # Triage verifies only what PDQ or the descriptor leave open: never more than the full
    # decision finds, and what PDQ matches on its own it keeps.
    assert evaluation["jpeg30"]["triage_decision"]["recall"] == 1.0
    for group in evaluation.values():
        assert group["triage_decision"]["recall"] <= group["decision"]["recall"]
    assert 0.0 <= result["timing"]["triage_queries_with_orb_features"] <= 1.0
    assert evaluation["all hard"]["queries"] == {"with_reference": 6.0, "distractor": 6.0}
    assert (tmp_path / "report" / "robust_images.md").read_text().count("|") > 20
    assert result["timing"]["projected_queries_per_second_2_cores"]["full"] > 0


def test_bench_robust_can_hash_queries_as_a_crawl_does(shared_data: Path, tmp_path: Path) -> None:
    from ansim.benchmarks.robust_images import RobustBank, StageClock
    from ansim.detector.image_decision import Thresholds

    photo = shared_data / "images" / "bsds500" / "test" / "100007.jpg"
    bank = RobustBank(None, Thresholds())
    reference = bank.signals(photo, StageClock()).features
    crawled = bank.signals(photo, StageClock(), half_size=False).features
    assert reference is not None and crawled is not None
    assert len(crawled) == crawled.fine_count == reference.fine_count < len(reference)
