"""Contrastive training of the copy-detection descriptor (`ansim model train`).

Each step draws `batch_size` distinct training photos, cuts one random region of each
(an "instance"), and renders two views of it: a mild one (what a reference looks like)
and a strong one (what a repost looks like), or two strong ones. The loss is InfoNCE
over the 2N views (each view's partner is its positive, the other 2N-2 are negatives)
plus a small KoLeo term that spreads descriptors over the sphere, as in SSCD; that
spread is what makes one similarity threshold mean the same thing everywhere.

Batches are a pure function of (seed, step), and a checkpoint (model, optimiser, step)
is written atomically every `checkpoint_every` steps, so an interrupted run resumes where
it stopped and draws exactly the batches it would have drawn.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ansim.models.augment import AugmentContext, instance_crop, mild_view, strong_view
from ansim.models.descriptor import CopyDescriptor, DescriptorConfig, preprocess, save_weights
from PIL import Image
from torch.utils.data import DataLoader, Dataset

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

# The split of ../shared/data/images/ (by folder): the network trains on these two
# folders only; bsds500/test, cq100 and kodak24 are never seen in training.
TRAIN_FOLDERS = ("bsds500/train", "urban100")


@dataclass
class TrainConfig:
    data_root: Path
    folders: tuple[str, ...] = TRAIN_FOLDERS
    run_dir: Path = Path("runs/descriptor")
    output: Path = Path("models/weights/descriptor.pt")
    steps: int = 2000
    batch_size: int = 48
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    temperature: float = 0.05
    koleo_weight: float = 0.5
    strong_pair_share: float = 0.3
    base_side: int = 144
    seed: int = 17
    threads: int = 1
    workers: int = 1
    checkpoint_every: int = 100
    log_every: int = 10
    model: DescriptorConfig = field(default_factory=DescriptorConfig)

    def recipe(self) -> dict[str, object]:
        out = asdict(self)
        out["data_root"] = "<shared>/images"
        out["run_dir"] = str(self.run_dir)
        out["output"] = str(self.output)
        return out


def find_images(root: Path, folders: tuple[str, ...]) -> list[Path]:
    paths = []
    for folder in folders:
        paths.extend(
            p for p in sorted((root / folder).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES
        )
    if not paths:
        raise FileNotFoundError(f"no training images under {root} in {', '.join(folders)}")
    return paths


def load_photos(paths: list[Path], max_side: int) -> list[Image.Image]:
    """Decode once, shrink to the working size, keep in memory (~300 photos: ~40 MB)."""
    photos = []
    for path in paths:
        with Image.open(path) as image:
            photo = image.convert("RGB")
            photo.thumbnail((max_side, max_side), Image.BILINEAR)
            photos.append(photo)
    return photos


def to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    return preprocess(np.asarray(image.convert("RGB")), size)


class PairBatches(Dataset):
    """Index = training step; item = (views_a, views_b), each (batch, 3, size, size)."""

    def __init__(self, photos: list[Image.Image], config: TrainConfig) -> None:
        self.photos = photos
        self.config = config
        self.context = AugmentContext(others=photos)

    def __len__(self) -> int:
        return self.config.steps

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.config
        rng = random.Random(f"{config.seed}:{step}")
        chosen = rng.sample(range(len(self.photos)), min(config.batch_size, len(self.photos)))
        size = config.model.input_size
        views_a, views_b = [], []
        for index in chosen:
            instance = instance_crop(self.photos[index], rng, config.base_side)
            first = (
                strong_view(instance, rng, self.context)
                if rng.random() < config.strong_pair_share
                else mild_view(instance, rng, self.context)
            )
            views_a.append(to_tensor(first, size))
            views_b.append(to_tensor(strong_view(instance, rng, self.context), size))
        return torch.stack(views_a), torch.stack(views_b)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over 2N unit vectors: each view's positive is its partner view."""
    views = torch.cat([a, b])
    n = a.shape[0]
    logits = views @ views.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, targets)


def koleo(descriptors: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Kozachenko-Leonenko entropy estimate: minus mean log distance to the nearest other."""
    with torch.no_grad():
        similarity = descriptors @ descriptors.T
        similarity.fill_diagonal_(-2.0)
        nearest = similarity.argmax(dim=1)
    distances = (descriptors - descriptors[nearest]).norm(dim=1)
    return -torch.log(distances + eps).mean()


def learning_rate(config: TrainConfig, step: int) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def checkpoint_path(config: TrainConfig) -> Path:
    return config.run_dir / "checkpoint.pt"


def save_checkpoint(
    config: TrainConfig, model: CopyDescriptor, optimizer: torch.optim.Optimizer, step: int
) -> None:
    path = checkpoint_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(
        {
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "model_config": config.model.to_dict(),
        },
        temporary,
    )
    os.replace(temporary, path)


def resume(config: TrainConfig, model: CopyDescriptor, optimizer: torch.optim.Optimizer) -> int:
    """Load the run's checkpoint if there is one; return the step to continue from."""
    path = checkpoint_path(config)
    if not path.exists():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    if DescriptorConfig.from_dict(state["model_config"]) != config.model:
        raise ValueError(
            f"{path} was trained with another network shape; use a new --run-dir or delete it"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


@dataclass
class StepReport:
    step: int
    steps: int
    loss: float
    infonce: float
    koleo: float
    lr: float
    views_per_second: float


def train(config: TrainConfig, progress: Callable[[StepReport], None] | None = None) -> Path:
    """Train (or resume) and write the final weights to `config.output`."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    photos = load_photos(find_images(config.data_root, config.folders), max_side=320)
    model = CopyDescriptor(config.model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    start = resume(config, model, optimizer)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    log = (config.run_dir / "train.log.jsonl").open("a")
    batches = PairBatches(photos, config)
    loader = DataLoader(
        batches,
        batch_size=None,
        sampler=range(start, config.steps),
        num_workers=config.workers,
        prefetch_factor=2 if config.workers else None,
        persistent_workers=False,
    )
    model.train()
    started = time.monotonic()
    for step, (views_a, views_b) in zip(range(start, config.steps), loader, strict=False):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        a, b = model(views_a), model(views_b)
        contrastive = info_nce(a, b, config.temperature)
        spread = koleo(torch.cat([a, b]))
        loss = contrastive + config.koleo_weight * spread
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            elapsed = time.monotonic() - started
            report = StepReport(
                step=done,
                steps=config.steps,
                loss=loss.item(),
                infonce=contrastive.item(),
                koleo=spread.item(),
                lr=learning_rate(config, step),
                views_per_second=2 * config.batch_size * (done - start) / max(elapsed, 1e-9),
            )
            log.write(json.dumps(asdict(report)) + "\n")
            log.flush()
            if progress:
                progress(report)
        if done % config.checkpoint_every == 0 or done == config.steps:
            save_checkpoint(config, model, optimizer, done)
    log.close()
    model.eval()
    config.output.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, str(config.output), config.recipe())
    return config.output
