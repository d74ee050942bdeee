"""The hard transforms of the robust-image benchmark: the edits that defeat PDQ.

Each transform is `(image, rng, backgrounds) -> image` with a fixed strength (crop 20%
means a window keeping 80% of the area); only placement and colours are drawn from the
seeded `rng`, so a benchmark run is reproducible. These are written apart from the
training augmentations (`models/augment.py`) with their own layouts (a phone screenshot
of a social feed, a classic two-band meme, ...), so the descriptor is not scored on the
exact code it trained on.

A few easy transforms (JPEG, downscale, blur, a caption, colour, mirror) ride along so
one run also checks that the full decision is not worse than PDQ where PDQ works.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from ansim.models.augment import perspective_coefficients
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Transform = Callable[[Image.Image, random.Random, Sequence[Image.Image]], Image.Image]

CAPTIONS = (
    "when the weekend finally arrives",
    "nobody: absolutely nobody:",
    "me explaining my plans",
    "this is fine",
    "look what I found today",
    "can't stop laughing at this",
)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def crop_area(keep: float) -> Transform:
    """A window of the same aspect keeping `keep` of the area, at a random place."""

    def transform(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
        width, height = image.size
        side = np.sqrt(keep)
        crop_w, crop_h = round(width * side), round(height * side)
        left = rng.randint(0, width - crop_w)
        top = rng.randint(0, height - crop_h)
        return image.crop((left, top, left + crop_w, top + crop_h))

    return transform


def rotate(degrees: float) -> Transform:
    """Rotate by +/- `degrees` inside an enlarged black canvas (nothing of the photo lost)."""

    def transform(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
        angle = degrees if rng.random() < 0.5 else -degrees
        return image.rotate(angle, Image.BICUBIC, expand=True, fillcolor=(0, 0, 0))

    return transform


def pad(share: float) -> Transform:
    """Grow the canvas by `share` of each dimension with a solid colour, split unevenly."""

    def transform(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
        width, height = image.size
        extra_w, extra_h = round(width * share), round(height * share)
        left = rng.randint(0, extra_w)
        top = rng.randint(0, extra_h)
        fill = rng.choice([(255, 255, 255), (0, 0, 0), (rng.randrange(256),) * 3])
        return ImageOps.expand(image, (left, top, extra_w - left, extra_h - top), fill=fill)

    return transform


def meme_frame(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
    """The classic two-band meme: white bands above and below with a black caption."""
    width, height = image.size
    top, bottom = round(height * 0.25), round(height * 0.12)
    framed = ImageOps.expand(image, (0, top, 0, bottom), fill=(255, 255, 255))
    draw = ImageDraw.Draw(framed)
    size = max(10, top // 3)
    caption = rng.choice(CAPTIONS)
    draw.text((width // 2, top // 2), caption, (0, 0, 0), _font(size), anchor="mm")
    draw.text(
        (width // 2, top + height + bottom // 2),
        "@reposter",
        (90, 90, 90),
        _font(size // 2),
        anchor="mm",
    )
    return framed


def phone_screenshot(
    image: Image.Image, rng: random.Random, _: Sequence[Image.Image]
) -> Image.Image:
    """A phone screenshot of a social feed: status bar, header, the photo, likes, comments."""
    screen_w = 540
    screen_h = 1170
    dark = rng.random() < 0.5
    background = (0, 0, 0) if dark else (255, 255, 255)
    ink = (235, 235, 235) if dark else (20, 20, 20)
    canvas = Image.new("RGB", (screen_w, screen_h), background)
    draw = ImageDraw.Draw(canvas)
    draw.text((20, 12), "9:41", ink, _font(22))
    draw.rectangle((470, 16, 515, 34), outline=ink, width=2)
    draw.ellipse((20, 70, 70, 120), fill=(rng.randrange(256), 120, 200))
    draw.text((85, 82), "some_account", ink, _font(22))
    photo_w = screen_w
    photo_h = round(image.height * photo_w / image.width)
    photo_top = 140
    canvas.paste(image.resize((photo_w, photo_h), Image.BICUBIC), (0, photo_top))
    y = photo_top + photo_h + 16
    for x in (20, 70, 120):
        draw.ellipse((x, y, x + 30, y + 30), outline=ink, width=3)
    y += 50
    draw.text((20, y), f"{rng.randint(10, 9999)} likes", ink, _font(22))
    for _ in range(6):
        y += 36
        draw.text((20, y), rng.choice(CAPTIONS), ink, _font(20))
    return canvas


def paste_into(scale: float) -> Transform:
    """Shrink the photo to `scale` of the background's width and paste it at a random place."""

    def transform(
        image: Image.Image, rng: random.Random, backgrounds: Sequence[Image.Image]
    ) -> Image.Image:
        background = backgrounds[rng.randrange(len(backgrounds))].copy()
        width = round(background.width * scale)
        height = min(background.height, round(image.height * width / image.width))
        pasted = image.resize((width, height), Image.BICUBIC)
        left = rng.randint(0, background.width - pasted.width)
        top = rng.randint(0, background.height - pasted.height)
        background.paste(pasted, (left, top))
        return background

    return transform


def perspective(strength: float) -> Transform:
    """A camera tilt: one edge shrunk by `strength` of the frame on both ends."""

    def transform(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
        width, height = image.size
        dx, dy = strength * width, strength * height
        corners = [(0, 0), (width, 0), (width, height), (0, height)]
        side = rng.randrange(4)
        moved = list(corners)
        if side == 0:  # top edge shrinks
            moved[0], moved[1] = (dx, 0), (width - dx, 0)
        elif side == 1:  # right edge shrinks
            moved[1], moved[2] = (width, dy), (width, height - dy)
        elif side == 2:  # bottom edge shrinks
            moved[2], moved[3] = (width - dx, height), (dx, height)
        else:  # left edge shrinks
            moved[3], moved[0] = (0, height - dy), (0, dy)
        coefficients = perspective_coefficients(corners, moved)
        return image.transform(
            image.size, Image.PERSPECTIVE, coefficients, Image.BICUBIC, fillcolor=(0, 0, 0)
        )

    return transform


def chain(*steps: Transform) -> Transform:
    def transform(
        image: Image.Image, rng: random.Random, backgrounds: Sequence[Image.Image]
    ) -> Image.Image:
        for step in steps:
            image = step(image, rng, backgrounds)
        return image

    return transform


# --- easy transforms (PDQ already handles these) ---------------------------------------


def jpeg(quality: int) -> Transform:
    def transform(image: Image.Image, _: random.Random, __: Sequence[Image.Image]) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")

    return transform


def downscale(factor: float) -> Transform:
    def transform(image: Image.Image, _: random.Random, __: Sequence[Image.Image]) -> Image.Image:
        size = (max(16, round(image.width * factor)), max(16, round(image.height * factor)))
        return image.resize(size, Image.BICUBIC)

    return transform


def blur(radius: float) -> Transform:
    def transform(image: Image.Image, _: random.Random, __: Sequence[Image.Image]) -> Image.Image:
        return image.filter(ImageFilter.GaussianBlur(radius))

    return transform


def caption(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
    image = image.copy()
    draw = ImageDraw.Draw(image)
    size = max(10, image.height // 16)
    draw.text(
        (image.width // 20, image.height - 2 * size),
        rng.choice(CAPTIONS),
        (255, 255, 255),
        _font(size),
        stroke_width=2,
        stroke_fill=(0, 0, 0),
    )
    return image


def recolor(image: Image.Image, _: random.Random, __: Sequence[Image.Image]) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(1.25)
    return ImageEnhance.Contrast(image).enhance(0.8)


def mirror(image: Image.Image, _: random.Random, __: Sequence[Image.Image]) -> Image.Image:
    return ImageOps.mirror(image)


HARD_TRANSFORMS: dict[str, Transform] = {
    "crop10": crop_area(0.90),
    "crop20": crop_area(0.80),
    "crop40": crop_area(0.60),
    "rotate5": rotate(5),
    "rotate15": rotate(15),
    "rotate30": rotate(30),
    "pad20": pad(0.20),
    "meme": meme_frame,
    "screenshot": phone_screenshot,
    "paste": paste_into(0.5),
    "perspective": perspective(0.15),
    "crop20+rotate15": chain(crop_area(0.80), rotate(15)),
    "crop20+meme": chain(crop_area(0.80), meme_frame),
    "pad20+perspective": chain(pad(0.20), perspective(0.15)),
    "crop20+screenshot": chain(crop_area(0.80), phone_screenshot),
}

EASY_TRANSFORMS: dict[str, Transform] = {
    "jpeg30": jpeg(30),
    "downscale50": downscale(0.5),
    "blur2": blur(2.0),
    "caption": caption,
    "recolor": recolor,
    "mirror": mirror,
}
