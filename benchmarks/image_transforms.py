"""Simulated reposts for the image benchmarks: one registry of named transforms.

Every transform is `(image, rng, backgrounds) -> image`: an RGB image, a seeded
`random.Random` (the only source of randomness: crop offsets, overlay positions, noise,
so the same seed gives byte-identical copies) and photos to paste into (used by `paste`
alone). Strengths are fixed by the name (crop 20% keeps 80% of the area).

Two sets of names, one per benchmark:
- `IMAGE_BENCH_TRANSFORMS` (`ansim bench images`, PDQ beside imagehash): everyday edits.
  How a copy is written to disk (PNG, or JPEG at a given quality) is part of the
  transform there: re-encoding is one of the things reposts go through.
- `HARD_TRANSFORMS` and `EASY_TRANSFORMS` (`ansim bench robust`): the edits that defeat
  PDQ, and a few that PDQ handles, so one run also checks that the full decision is not
  worse than PDQ where PDQ works. These are written apart from the training
  augmentations (`models/augment.py`) with their own layouts (a phone screenshot of a
  social feed, a classic two-band meme, ...), so the descriptor is not scored on the
  exact code it trained on.

Overlays are drawn with shapes and Pillow's built-in font (no outside assets).
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from ansim.models.augment import perspective_coefficients
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

TransformFn = Callable[[Image.Image, random.Random, Sequence[Image.Image]], Image.Image]


@dataclass(frozen=True)
class ImageTransform:
    name: str
    apply: TransformFn
    description: str
    # `ansim bench images` writes the copy as JPEG at this quality when set, else as
    # lossless PNG so that only the transform itself changes the pixels.
    jpeg_quality: int | None = None

    def __call__(
        self, image: Image.Image, rng: random.Random, backgrounds: Sequence[Image.Image] = ()
    ) -> Image.Image:
        return self.apply(image, rng, backgrounds)

    @property
    def suffix(self) -> str:
        return ".jpg" if self.jpeg_quality is not None else ".png"

    def render(self, image: Image.Image, rng: random.Random) -> bytes:
        """The transformed copy as file bytes."""
        result = self.apply(image.convert("RGB"), rng, ()).convert("RGB")
        buffer = io.BytesIO()
        if self.jpeg_quality is not None:
            result.save(buffer, "JPEG", quality=self.jpeg_quality)
        else:
            # Level 1: these are throwaway files; stronger compression only costs time.
            result.save(buffer, "PNG", compress_level=1)
        return buffer.getvalue()


def transform_rng(seed: int, source_key: str, transform_name: str) -> random.Random:
    """A generator that depends only on (seed, source, transform), never on run order."""
    digest = hashlib.sha256(f"{seed}\0{source_key}\0{transform_name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


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


# --- everyday edits (`ansim bench images`) -------------------------------------------


def identity(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
    return image.copy()


def resize_by(scale: float) -> TransformFn:
    def resize(image: Image.Image, _: random.Random, __: Sequence[Image.Image]) -> Image.Image:
        width, height = image.size
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return image.resize(size, Image.Resampling.LANCZOS)

    return resize


def crop_by(fraction: float) -> TransformFn:
    """Cut `fraction` of the width and of the height, split at random between the edges."""

    def crop(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
        width, height = image.size
        cut_x, cut_y = round(width * fraction), round(height * fraction)
        left = rng.randint(0, cut_x)
        top = rng.randint(0, cut_y)
        return image.crop((left, top, left + width - cut_x, top + height - cut_y))

    return crop


def flip_horizontal(
    image: Image.Image, rng: random.Random, _: Sequence[Image.Image]
) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def rotate_90(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
    return image.transpose(Image.Transpose.ROTATE_90)


def rotate_5(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
    # Same canvas size, black corners: what a slightly tilted re-upload looks like.
    return image.rotate(5, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))


def enhance_by(enhancer: type[ImageEnhance._Enhance], factor: float) -> TransformFn:
    def enhance(image: Image.Image, _: random.Random, __: Sequence[Image.Image]) -> Image.Image:
        return enhancer(image).enhance(factor)

    return enhance


def gaussian_blur(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius=2))


def gaussian_noise(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    noise = np.random.default_rng(rng.getrandbits(64)).normal(0.0, 12.0, size=pixels.shape)
    noisy = pixels + noise
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def text_overlay(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
    """A meme-style caption in white with a black outline, at a random height."""
    result = image.copy()
    draw = ImageDraw.Draw(result)
    width, height = result.size
    size = max(8, height // 10)
    text = "look what I found #repost"
    font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=2)
    x = max(0, (width - (right - left)) // 2)
    y = rng.randrange(max(1, height - (bottom - top)))
    draw.text((x, y), text, font=font, fill="white", stroke_width=2, stroke_fill="black")
    return result


def _draw_smiley(draw: ImageDraw.ImageDraw, x: int, y: int, diameter: int) -> None:
    draw.ellipse((x, y, x + diameter, y + diameter), fill=(255, 204, 0), outline=(120, 80, 0))
    eye = max(1, diameter // 8)
    for eye_x in (x + diameter * 3 // 10, x + diameter * 6 // 10):
        eye_y = y + diameter * 3 // 10
        draw.ellipse((eye_x, eye_y, eye_x + eye, eye_y + eye * 2), fill=(60, 40, 0))
    inset = diameter // 4
    draw.arc(
        (x + inset, y + inset, x + diameter - inset, y + diameter - inset),
        start=20,
        end=160,
        fill=(60, 40, 0),
        width=max(1, diameter // 16),
    )


def emoji_logo_overlay(
    image: Image.Image, rng: random.Random, _: Sequence[Image.Image]
) -> Image.Image:
    """Two smiley 'stickers' at random places and a logo badge in a corner."""
    result = image.copy()
    draw = ImageDraw.Draw(result)
    width, height = result.size
    diameter = max(4, min(width, height) // 5)
    for _ in range(2):
        x = rng.randrange(max(1, width - diameter))
        y = rng.randrange(max(1, height - diameter))
        _draw_smiley(draw, x, y, diameter)
    badge_w, badge_h = max(8, width // 5), max(6, height // 12)
    corner = rng.randrange(4)
    bx = 4 if corner in (0, 2) else max(0, width - badge_w - 4)
    by = 4 if corner in (0, 1) else max(0, height - badge_h - 4)
    draw.rounded_rectangle(
        (bx, by, bx + badge_w, by + badge_h), radius=badge_h // 3, fill=(200, 30, 60)
    )
    draw.text(
        (bx + badge_w // 2, by + badge_h // 2),
        "CLIPZ",
        font=_font(badge_h * 2 // 3),
        fill="white",
        anchor="mm",
    )
    return result


def letterbox_pad(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
    """Black bars above and below, each 1/8 of the height (a widescreen letterbox)."""
    width, height = image.size
    bar = max(1, height // 8)
    canvas = Image.new("RGB", (width, height + 2 * bar), (0, 0, 0))
    canvas.paste(image, (0, bar))
    return canvas


def screenshot_embed(
    image: Image.Image, rng: random.Random, _: Sequence[Image.Image]
) -> Image.Image:
    """The image as a post in a phone-screenshot-like page: status bar, header, caption."""
    width, height = image.size
    margin = max(4, width // 20)
    status_h, header_h, caption_h = max(6, width // 16), max(10, width // 7), max(10, width // 5)
    canvas_w = width + 2 * margin
    canvas_h = status_h + header_h + height + caption_h
    canvas = Image.new("RGB", (canvas_w, canvas_h), (245, 245, 247))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, canvas_w, status_h), fill=(20, 20, 24))
    avatar = header_h * 2 // 3
    top = status_h + (header_h - avatar) // 2
    draw.ellipse(
        (margin, top, margin + avatar, top + avatar),
        fill=tuple(rng.randrange(40, 220) for _ in range(3)),
    )
    line_h = max(2, avatar // 4)
    draw.rounded_rectangle(
        (margin + avatar + margin, top + line_h, canvas_w * 3 // 5, top + 2 * line_h),
        radius=line_h // 2,
        fill=(60, 60, 70),
    )
    canvas.paste(image, (margin, status_h + header_h))
    for row in range(3):
        y = status_h + header_h + height + margin + row * 2 * line_h
        right = canvas_w - margin - rng.randrange(max(1, canvas_w // 3))
        draw.rounded_rectangle(
            (margin, y, right, y + line_h), radius=line_h // 2, fill=(150, 150, 160)
        )
    return canvas


# --- hard edits that defeat PDQ (`ansim bench robust`) -------------------------------


def crop_area(keep: float) -> TransformFn:
    """A window of the same aspect keeping `keep` of the area, at a random place."""

    def transform(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
        width, height = image.size
        side = np.sqrt(keep)
        crop_w, crop_h = round(width * side), round(height * side)
        left = rng.randint(0, width - crop_w)
        top = rng.randint(0, height - crop_h)
        return image.crop((left, top, left + crop_w, top + crop_h))

    return transform


def rotate(degrees: float) -> TransformFn:
    """Rotate by +/- `degrees` inside an enlarged black canvas (nothing of the photo lost)."""

    def transform(image: Image.Image, rng: random.Random, _: Sequence[Image.Image]) -> Image.Image:
        angle = degrees if rng.random() < 0.5 else -degrees
        return image.rotate(angle, Image.BICUBIC, expand=True, fillcolor=(0, 0, 0))

    return transform


def pad(share: float) -> TransformFn:
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


def paste_into(scale: float) -> TransformFn:
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


def perspective(strength: float) -> TransformFn:
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


def chain(*steps: TransformFn) -> TransformFn:
    def transform(
        image: Image.Image, rng: random.Random, backgrounds: Sequence[Image.Image]
    ) -> Image.Image:
        for step in steps:
            image = step(image, rng, backgrounds)
        return image

    return transform


# --- easy transforms of the robust benchmark (PDQ already handles these) --------------


def jpeg(quality: int) -> TransformFn:
    def transform(image: Image.Image, _: random.Random, __: Sequence[Image.Image]) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")

    return transform


def downscale(factor: float) -> TransformFn:
    def transform(image: Image.Image, _: random.Random, __: Sequence[Image.Image]) -> Image.Image:
        size = (max(16, round(image.width * factor)), max(16, round(image.height * factor)))
        return image.resize(size, Image.BICUBIC)

    return transform


def blur(radius: float) -> TransformFn:
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


def _registry(*transforms: ImageTransform) -> dict[str, ImageTransform]:
    return {t.name: t for t in transforms}


IMAGE_BENCH_TRANSFORMS: dict[str, ImageTransform] = _registry(
    ImageTransform("jpeg_q30", identity, "re-encoded as JPEG quality 30", jpeg_quality=30),
    ImageTransform("jpeg_q50", identity, "re-encoded as JPEG quality 50", jpeg_quality=50),
    ImageTransform("jpeg_q75", identity, "re-encoded as JPEG quality 75", jpeg_quality=75),
    ImageTransform("resize_0.5", resize_by(0.5), "scaled to half size (Lanczos)"),
    ImageTransform("resize_0.25", resize_by(0.25), "scaled to a quarter size (Lanczos)"),
    ImageTransform("crop_5", crop_by(0.05), "5% of width and height cut away"),
    ImageTransform("crop_10", crop_by(0.10), "10% of width and height cut away"),
    ImageTransform("crop_20", crop_by(0.20), "20% of width and height cut away"),
    ImageTransform("crop_40", crop_by(0.40), "40% of width and height cut away"),
    ImageTransform("flip", flip_horizontal, "mirrored left-right"),
    ImageTransform("rotate_90", rotate_90, "rotated 90 degrees"),
    ImageTransform("rotate_5", rotate_5, "rotated 5 degrees, black corners"),
    ImageTransform("brightness", enhance_by(ImageEnhance.Brightness, 1.4), "brightness x1.4"),
    ImageTransform("contrast", enhance_by(ImageEnhance.Contrast, 1.6), "contrast x1.6"),
    ImageTransform("saturation", enhance_by(ImageEnhance.Color, 1.8), "saturation x1.8"),
    ImageTransform("blur", gaussian_blur, "Gaussian blur, radius 2 px"),
    ImageTransform("noise", gaussian_noise, "Gaussian noise, sigma 12 per channel"),
    ImageTransform("text_overlay", text_overlay, "caption text over the picture"),
    ImageTransform(
        "emoji_logo_overlay", emoji_logo_overlay, "two emoji stickers and a corner logo"
    ),
    ImageTransform("letterbox_pad", letterbox_pad, "black bars, 1/8 of the height each"),
    ImageTransform(
        "screenshot", screenshot_embed, "embedded in a screenshot-like page with UI chrome"
    ),
)

HARD_TRANSFORMS: dict[str, ImageTransform] = _registry(
    ImageTransform("crop10", crop_area(0.90), "a window keeping 90% of the area"),
    ImageTransform("crop20", crop_area(0.80), "a window keeping 80% of the area"),
    ImageTransform("crop40", crop_area(0.60), "a window keeping 60% of the area"),
    ImageTransform("rotate5", rotate(5), "rotated +/-5 degrees on a larger black canvas"),
    ImageTransform("rotate15", rotate(15), "rotated +/-15 degrees on a larger black canvas"),
    ImageTransform("rotate30", rotate(30), "rotated +/-30 degrees on a larger black canvas"),
    ImageTransform("pad20", pad(0.20), "canvas grown by 20% with a solid colour"),
    ImageTransform("meme", meme_frame, "two-band meme: white bands and a caption"),
    ImageTransform("screenshot", phone_screenshot, "phone screenshot of a social feed"),
    ImageTransform("paste", paste_into(0.5), "pasted at half width into another photo"),
    ImageTransform("perspective", perspective(0.15), "camera tilt: one edge shrunk 15%"),
    ImageTransform("crop20+rotate15", chain(crop_area(0.80), rotate(15)), "crop20, rotate15"),
    ImageTransform("crop20+meme", chain(crop_area(0.80), meme_frame), "crop20, then meme"),
    ImageTransform(
        "pad20+perspective", chain(pad(0.20), perspective(0.15)), "pad20, then perspective"
    ),
    ImageTransform(
        "crop20+screenshot", chain(crop_area(0.80), phone_screenshot), "crop20, screenshot"
    ),
)

EASY_TRANSFORMS: dict[str, ImageTransform] = _registry(
    ImageTransform("jpeg30", jpeg(30), "JPEG quality 30 (decoded again)"),
    ImageTransform("downscale50", downscale(0.5), "half size (bicubic)"),
    ImageTransform("blur2", blur(2.0), "Gaussian blur, radius 2 px"),
    ImageTransform("caption", caption, "a white caption near the bottom"),
    ImageTransform("recolor", recolor, "brightness x1.25, contrast x0.8"),
    ImageTransform("mirror", mirror, "mirrored left-right"),
)


def select_transforms(names: list[str] | None) -> list[ImageTransform]:
    """The named `ansim bench images` transforms (all when `names` is None); unknown names
    raise ValueError."""
    if names is None:
        return list(IMAGE_BENCH_TRANSFORMS.values())
    unknown = [n for n in names if n not in IMAGE_BENCH_TRANSFORMS]
    if unknown:
        raise ValueError(
            f"unknown transform(s) {', '.join(unknown)}; known: {', '.join(IMAGE_BENCH_TRANSFORMS)}"
        )
    return [IMAGE_BENCH_TRANSFORMS[n] for n in names]
