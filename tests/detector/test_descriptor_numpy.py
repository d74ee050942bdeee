"""The descriptor without torch: the weights file's reader (same arrays as `torch.load`,
nothing but arrays and plain values built), the numpy network (same vectors as the torch
one), and a process that describes images and never imports torch."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ansim.detector.descriptor import DEFAULT_WEIGHTS
from ansim.models.torch_file import MAX_PICKLE_BYTES, RefusedTorchFile, read_torch_file
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.helpers import photo_like

BSDS_TEST = "images/bsds500/test"


def write_torch_file(path: Path, data_pkl: bytes, storages: dict[str, bytes]) -> Path:
    """A zip laid out as `torch.save` writes one, holding the given pickle and storages."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def tensor_pickle(
    elements: int, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> bytes:
    """A data.pkl (pickle's text opcodes) of one float32 tensor over storage '0', as torch
    pickles one: _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)."""

    def ints(values: tuple[int, ...]) -> bytes:
        return b"(" + b"".join(b"I%d\n" % value for value in values) + b"t"

    storage = b"(Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nI%d\ntQ" % elements
    return (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n("
        + storage
        + b"I%d\n" % offset
        + ints(size)
        + ints(stride)
        + b"I00\nNtR."
    )


# --- the weights file's reader ---------------------------------------------------------------


def test_reader_gives_the_arrays_torch_load_gives() -> None:
    torch = pytest.importorskip("torch")
    expected = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
    payload = read_torch_file(DEFAULT_WEIGHTS)
    assert payload["config"] == expected["config"]
    assert payload["recipe"] == expected["recipe"]
    assert list(payload["state_dict"]) == list(expected["state_dict"])
    dtypes = set()
    for name, tensor in expected["state_dict"].items():
        array = payload["state_dict"][name]
        assert array.dtype == tensor.numpy().dtype, name
        assert array.shape == tuple(tensor.shape), name
        assert np.array_equal(array, tensor.numpy()), name
        dtypes.add(array.dtype)
    assert dtypes == {np.dtype(np.float32), np.dtype(np.int64)}  # num_batches_tracked


def test_reader_follows_offsets_strides_and_shared_storages(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    saved = {
        "base": base,
        "view": base[1:, 1::2].t(),  # offset 7, strides (2, 6), one storage with "base"
        "half": torch.tensor([1.5, -2.0], dtype=torch.float16),
        "flags": torch.tensor([True, False]),
        "scalar": torch.tensor(3, dtype=torch.int32),
    }
    path = tmp_path / "tensors.pt"
    torch.save(saved, path)
    read = read_torch_file(path)
    for name, tensor in saved.items():
        assert read[name].dtype == tensor.numpy().dtype, name
        assert np.array_equal(read[name], tensor.numpy()), name


def test_reader_builds_a_strided_tensor_without_torch(tmp_path: Path) -> None:
    storage = np.arange(6, dtype=np.float32)
    path = write_torch_file(
        tmp_path / "strided.pt", tensor_pickle(6, 1, (2, 2), (3, 1)), {"0": storage.tobytes()}
    )
    assert np.array_equal(read_torch_file(path), [[1, 2], [4, 5]])


def test_reader_refuses_a_tensor_reading_past_its_storage(tmp_path: Path) -> None:
    storage = np.zeros(4, np.float32).tobytes()
    path = write_torch_file(tmp_path / "past.pt", tensor_pickle(4, 2, (4,), (1,)), {"0": storage})
    with pytest.raises(RefusedTorchFile, match="reads past its storage"):
        read_torch_file(path)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("builtins", "eval"),
        ("subprocess", "Popen"),
        ("torch.nn.modules.conv", "Conv2d"),
        ("torch._utils", "_rebuild_parameter"),
    ],
)
def test_reader_refuses_what_a_weights_file_never_needs(
    tmp_path: Path, module: str, name: str
) -> None:
    marker = tmp_path / "ran"
    hostile = b"\x80\x02c%s\n%s\n(Vtouch %s\ntR." % (module.encode(), name.encode(), bytes(marker))
    path = write_torch_file(tmp_path / "hostile.pt", hostile, {})
    with pytest.raises(RefusedTorchFile, match=rf"asks for {module}\.{name}.*refused"):
        read_torch_file(path)
    assert not marker.exists()


def test_reader_refuses_a_file_that_is_no_torch_zip(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pt"
    path.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(RefusedTorchFile, match="not a torch.save zip"):
        read_torch_file(path)


def test_reader_checks_sizes_before_unpacking(tmp_path: Path) -> None:
    """A compressed member may unpack to any size: its declared size is checked first."""
    wrong = write_torch_file(
        tmp_path / "wrong.pt", tensor_pickle(4, 0, (4,), (1,)), {"0": bytes(1 << 20)}
    )
    with pytest.raises(RefusedTorchFile, match="1048576 bytes, not 4"):
        read_torch_file(wrong)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", bytes(MAX_PICKLE_BYTES + 1))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(RefusedTorchFile, match="data.pkl unpacks to"):
        read_torch_file(bomb)


def test_unusable_weights_stop_a_command_before_its_first_image(tmp_path: Path) -> None:
    """Not one "decoder failed" per image: one error naming the file, exit code 2."""
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"not weights")
    photos = [photo_like(tmp_path / f"p{n}.png", seed=n) for n in range(2)]
    env = {**os.environ, "ANSIM_DESCRIPTOR_WEIGHTS": str(weights), "ANSIM_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansim"), "hash", *map(str, photos)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"the descriptor weights {weights} cannot be used" in " ".join(done.stderr.split())
    assert "failed" not in done.stdout


# --- the numpy network against the torch network ---------------------------------------------


def test_numpy_network_gives_the_torch_networks_vectors(shared_data: Path) -> None:
    torch = pytest.importorskip("torch")
    from ansim.benchmarks.image_transforms import HARD_TRANSFORMS
    from ansim.detector.descriptor import load_descriptor_model
    from ansim.models.descriptor import load_weights, preprocess

    paths = sorted((shared_data / BSDS_TEST).glob("*.jpg"))[:20]
    if len(paths) < 20:
        pytest.skip(f"fewer than 20 photos in {shared_data / BSDS_TEST}")
    photos = [Image.open(path).convert("RGB") for path in paths]
    rng = random.Random(3)
    copies = [
        HARD_TRANSFORMS[name](photos[index], rng, photos[index + 1 :])
        for index, name in enumerate(("crop20+rotate15", "meme", "paste", "perspective"))
    ]
    images = [np.asarray(image) for image in photos + copies]
    network, _ = load_weights(str(DEFAULT_WEIGHTS))
    with torch.inference_mode():
        size = network.config.input_size
        expected = network(torch.stack([preprocess(rgb, size) for rgb in images])).numpy()
    model = load_descriptor_model(DEFAULT_WEIGHTS)
    assert model is not None
    vectors = model.describe_batch(images)
    assert vectors.dtype == np.float32 and vectors.shape == expected.shape
    assert np.sum(vectors * expected, axis=1).min() >= 0.99999
    assert np.abs(vectors - expected).max() <= 1e-4
    # One image at a time (as hashing describes them) gives the batch's vectors.
    alone = np.stack([model.describe(rgb).vector for rgb in images[:3]])
    assert np.abs(alone - vectors[:3]).max() <= 1e-5


def test_describing_images_does_not_import_torch(tmp_path: Path) -> None:
    """torch's import cost every process that described an image (each scan worker) about
    a second of CPU; hashing an image file, the workers' path, now leaves it out."""
    photo = photo_like(tmp_path / "photo.jpg", seed=5)
    script = (
        "import sys; from pathlib import Path; "
        "from ansim.detector.descriptor import load_descriptor_model; "
        "from ansim.detector.hashing import HashOptions; "
        "from ansim.signal_types.hashing import hash_file; "
        "model = load_descriptor_model(); "
        f"signals = hash_file(Path({str(photo)!r}), HashOptions()); "
        "print(model is not None, 'descriptor' in signals.extra, 'torch' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["True", "True", "False"]
