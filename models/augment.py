"""Training augmentations for the copy-detection descriptor: the edits reposters make.

Each edit is a function `(image, rng, context) -> image` over PIL images with random
parameters drawn from `rng`, so a seeded `random.Random` replays a view exactly. The
strong pipeline (`strong_view`) chains a few geometric edits (crop, rotation, pad, meme
frame, screenshot, paste into another picture, perspective, overlays) with photometric
ones (colour, blur, noise, JPEG). The benchmark's hard transforms live apart, in
`benchmarks/image_transforms.py`, written independently with fixed strengths, so the
network is not scored on the exact code it trained on.
"""

from __future__ import annotations

import io
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps


@dataclass
class AugmentContext:
    """What edits may borrow: other pictures (paste backgrounds, picture-in-picture)."""

    others: Sequence[Image.Image]

    def other(self, rng: random.Random) -> Image.Image:
        return self.others[rng.randrange(len(self.others))]


Edit = Callable[[Image.Image, random.Random, AugmentContext], Image.Image]


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled scalable font: no system fonts needed, same glyphs everywhere."""
    return ImageFont.load_default(size=max(6, size))


def random_color(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def random_words(rng: random.Random, words: int) -> str:
    return " ".join(
        "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(2, 8)))
        for _ in range(words)
    )


# --- geometric edits ------------------------------------------------------------------


def crop(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    """Keep 25-95% of the area, at a random place and aspect."""
    width, height = image.size
    area = rng.uniform(0.25, 0.95)
    aspect = np.exp(rng.uniform(np.log(0.6), np.log(1.6)))
    crop_w = int(min(width, round(width * np.sqrt(area * aspect))))
    crop_h = int(min(height, round(height * np.sqrt(area / aspect))))
    left = rng.randint(0, width - crop_w)
    top = rng.randint(0, height - crop_h)
    return image.crop((left, top, left + crop_w, top + crop_h))


def rotate(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    angle = rng.uniform(-40, 40)
    if rng.random() < 0.5:
        return image.rotate(angle, Image.BILINEAR, expand=True, fillcolor=random_color(rng))
    return image.rotate(angle, Image.BILINEAR, expand=False, fillcolor=random_color(rng))


def pad(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    width, height = image.size
    sides = [int(rng.uniform(0, 0.35) * (width if i % 2 == 0 else height)) for i in range(4)]
    fill = random_color(rng) if rng.random() < 0.8 else (0, 0, 0)
    return ImageOps.expand(image, border=tuple(sides), fill=fill)


def meme(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    """A caption band above and/or below, or bold caption text on the picture itself."""
    width, height = image.size
    if rng.random() < 0.6:
        top = int(height * rng.uniform(0.0, 0.35))
        bottom = int(height * rng.uniform(0.0, 0.25))
        side = int(width * rng.uniform(0.0, 0.08))
        band = (255, 255, 255) if rng.random() < 0.7 else (0, 0, 0)
        image = ImageOps.expand(image, border=(side, top, side, bottom), fill=band)
        ink = (0, 0, 0) if band == (255, 255, 255) else (255, 255, 255)
        draw = ImageDraw.Draw(image)
        for band_top, band_h in ((0, top), (top + height, bottom)):
            if band_h > 8:
                size = max(8, int(band_h * rng.uniform(0.3, 0.6)))
                draw.text((side + 4, band_top + band_h // 4), random_words(rng, 4), ink, font(size))
        return image
    image = image.copy()
    draw = ImageDraw.Draw(image)
    size = max(8, int(height * rng.uniform(0.08, 0.18)))
    for y in (rng.uniform(0.0, 0.15), rng.uniform(0.75, 0.9)):
        draw.text(
            (int(width * rng.uniform(0.0, 0.2)), int(height * y)),
            random_words(rng, 3).upper(),
            (255, 255, 255),
            font(size),
            stroke_width=max(1, size // 12),
            stroke_fill=(0, 0, 0),
        )
    return image


def screenshot(image: Image.Image, rng: random.Random, context: AugmentContext) -> Image.Image:
    """The picture shown inside an app or browser window, with bars and text around it."""
    width, height = image.size
    scale = rng.uniform(0.45, 0.9)
    canvas_w = int(width / scale)
    canvas_h = int(height / rng.uniform(0.45, 0.85))
    background = (250, 250, 250) if rng.random() < 0.6 else (24, 24, 28)
    ink = (30, 30, 30) if background[0] > 128 else (220, 220, 220)
    canvas = Image.new("RGB", (canvas_w, canvas_h), background)
    draw = ImageDraw.Draw(canvas)
    bar = int(canvas_h * rng.uniform(0.04, 0.12))
    draw.rectangle((0, 0, canvas_w, bar), fill=random_color(rng))
    draw.text((6, bar // 4), random_words(rng, 3), (255, 255, 255), font(max(8, bar // 2)))
    left = rng.randint(0, canvas_w - width)
    top = rng.randint(bar, max(bar, canvas_h - height))
    canvas.paste(image, (left, top))
    line_h = max(8, canvas_h // 30)
    for y in range(min(top + height, canvas_h) + 4, canvas_h - line_h, line_h + 4):
        draw.text((8, y), random_words(rng, rng.randint(2, 8)), ink, font(line_h))
    if rng.random() < 0.4:
        thumb = context.other(rng).copy()
        thumb.thumbnail((max(8, canvas_w // 5), max(8, canvas_h // 5)))
        canvas.paste(thumb, (canvas_w - thumb.width - 4, bar + 4))
    return canvas


def paste_into(image: Image.Image, rng: random.Random, context: AugmentContext) -> Image.Image:
    """The picture pasted, shrunk, somewhere inside another picture."""
    background = context.other(rng).copy()
    background_w, background_h = background.size
    scale = rng.uniform(0.35, 0.85)
    fit = min(background_w / image.width, background_h / image.height) * scale
    pasted = image.resize((max(8, int(image.width * fit)), max(8, int(image.height * fit))))
    left = rng.randint(0, background_w - pasted.width)
    top = rng.randint(0, background_h - pasted.height)
    background.paste(pasted, (left, top))
    return background


def perspective(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    width, height = image.size
    spread = rng.uniform(0.05, 0.25)
    corners = [(0, 0), (width, 0), (width, height), (0, height)]
    moved = [
        (x + rng.uniform(-spread, spread) * width, y + rng.uniform(-spread, spread) * height)
        for x, y in corners
    ]
    coefficients = perspective_coefficients(moved, corners)
    return image.transform(
        image.size,
        Image.PERSPECTIVE,
        coefficients,
        Image.BILINEAR,
        fillcolor=random_color(rng),
    )


def perspective_coefficients(
    source: Sequence[tuple[float, float]], target: Sequence[tuple[float, float]]
) -> tuple[float, ...]:
    """PIL's 8 coefficients mapping output points `target` back to input points `source`."""
    rows, values = [], []
    for (sx, sy), (tx, ty) in zip(source, target, strict=True):
        rows.append([tx, ty, 1, 0, 0, 0, -sx * tx, -sx * ty])
        rows.append([0, 0, 0, tx, ty, 1, -sy * tx, -sy * ty])
        values.extend([sx, sy])
    return tuple(np.linalg.solve(np.asarray(rows, float), np.asarray(values, float)).tolist())


def overlay(image: Image.Image, rng: random.Random, context: AugmentContext) -> Image.Image:
    """Stickers, text, shapes or a small other picture drawn over parts of the picture."""
    image = image.copy()
    width, height = image.size
    draw = ImageDraw.Draw(image, "RGBA")
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        x, y = rng.uniform(0, 0.8) * width, rng.uniform(0, 0.8) * height
        w, h = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
        color = (*random_color(rng), rng.randint(120, 255))
        if kind < 0.35:
            draw.text((x, y), random_words(rng, 2), color, font(int(max(8, h / 2))))
        elif kind < 0.6:
            draw.ellipse((x, y, x + w, y + h), fill=color)
        elif kind < 0.8:
            draw.rectangle((x, y, x + w, y + h), fill=color)
        else:
            thumb = context.other(rng).copy()
            thumb.thumbnail((max(8, int(w)), max(8, int(h))))
            image.paste(thumb, (int(x), int(y)))
    return image


def flip(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    return ImageOps.mirror(image)


# --- photometric edits ----------------------------------------------------------------


def color(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.0, 1.8))
    if rng.random() < 0.3:
        hsv = np.asarray(image.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(int) + rng.randint(-25, 25)) % 256
        image = Image.fromarray(hsv, "HSV").convert("RGB")
    if rng.random() < 0.15:
        image = ImageOps.grayscale(image).convert("RGB")
    return image


def blur(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 2.5)))


def noise(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    noisy_rng = np.random.default_rng(rng.randrange(2**32))
    pixels = pixels + noisy_rng.normal(0, rng.uniform(2, 15), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(15, 90))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def rescale(image: Image.Image, rng: random.Random, _: AugmentContext) -> Image.Image:
    factor = rng.uniform(0.3, 1.0)
    small = (max(8, int(image.width * factor)), max(8, int(image.height * factor)))
    return image.resize(small, Image.BILINEAR)


GEOMETRIC: list[tuple[Edit, float]] = [
    (crop, 3.0),
    (rotate, 1.5),
    (pad, 1.0),
    (meme, 1.0),
    (screenshot, 1.0),
    (paste_into, 1.0),
    (perspective, 1.0),
    (overlay, 1.0),
]
PHOTOMETRIC: list[tuple[Edit, float]] = [
    (color, 0.6),
    (blur, 0.25),
    (noise, 0.15),
    (rescale, 0.3),
    (jpeg, 0.5),
]


def strong_view(image: Image.Image, rng: random.Random, context: AugmentContext) -> Image.Image:
    """One to three geometric edits, then each photometric edit with its probability."""
    edits, weights = zip(*GEOMETRIC, strict=True)
    for edit in rng.choices(edits, weights, k=rng.choice((1, 1, 2, 2, 3))):
        image = edit(image, rng, context)
    if rng.random() < 0.5:
        image = flip(image, rng, context)
    for edit, probability in PHOTOMETRIC:
        if rng.random() < probability:
            image = edit(image, rng, context)
    return image


def mild_view(image: Image.Image, rng: random.Random, context: AugmentContext) -> Image.Image:
    """What a registered reference looks like: the picture, maybe re-encoded or resized."""
    if rng.random() < 0.3:
        image = jpeg(image, rng, context)
    if rng.random() < 0.3:
        image = rescale(image, rng, context)
    return image


def instance_crop(image: Image.Image, rng: random.Random, side: int) -> Image.Image:
    """A random 40-100% region of a training photo, used as one training "instance".

    Distinct regions of the same photo give the network many more instances than there
    are photos; a batch never holds two instances of one photo.
    """
    width, height = image.size
    area = rng.uniform(0.4, 1.0)
    crop_w = int(width * np.sqrt(area))
    crop_h = int(height * np.sqrt(area))
    left = rng.randint(0, width - crop_w)
    top = rng.randint(0, height - crop_h)
    region = image.crop((left, top, left + crop_w, top + crop_h))
    region.thumbnail((side, side), Image.BILINEAR)
    return region
