"""Simulated reposts: deterministic image transforms, each a small named function.

Every transform takes an RGB image and a seeded numpy Generator and returns a new RGB
image; randomness (crop offsets, overlay positions, noise) comes only from that
generator, so the same seed gives byte-identical copies. How a copy is written to disk
(PNG, or JPEG at a given quality) is part of the transform: re-encoding is one of the
things reposts go through.

Overlays are drawn with shapes and Pillow's built-in font (no outside assets).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

TransformFn = Callable[[Image.Image, np.random.Generator], Image.Image]


@dataclass(frozen=True)
class ImageTransform:
    name: str
    apply: TransformFn
    description: str
    # Written as JPEG at this quality when set, else as lossless PNG so that only the
    # transform itself changes the pixels.
    jpeg_quality: int | None = None

    @property
    def suffix(self) -> str:
        return ".jpg" if self.jpeg_quality is not None else ".png"

    def render(self, image: Image.Image, rng: np.random.Generator) -> bytes:
        """The transformed copy as file bytes."""
        result = self.apply(image.convert("RGB"), rng).convert("RGB")
        buffer = BytesIO()
        if self.jpeg_quality is not None:
            result.save(buffer, "JPEG", quality=self.jpeg_quality)
        else:
            # Level 1: these are throwaway files; stronger compression only costs time.
            result.save(buffer, "PNG", compress_level=1)
        return buffer.getvalue()


def transform_rng(seed: int, source_key: str, transform_name: str) -> np.random.Generator:
    """A generator that depends only on (seed, source, transform), never on run order."""
    digest = hashlib.sha256(f"{seed}\0{source_key}\0{transform_name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def identity(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.copy()


def resize_by(scale: float) -> TransformFn:
    def resize(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        width, height = image.size
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return image.resize(size, Image.Resampling.LANCZOS)

    return resize


def crop_by(fraction: float) -> TransformFn:
    """Cut `fraction` of the width and of the height, split at random between the edges."""

    def crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        width, height = image.size
        cut_x, cut_y = round(width * fraction), round(height * fraction)
        left = int(rng.integers(0, cut_x + 1))
        top = int(rng.integers(0, cut_y + 1))
        return image.crop((left, top, left + width - cut_x, top + height - cut_y))

    return crop


def flip_horizontal(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def rotate_90(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.transpose(Image.Transpose.ROTATE_90)


def rotate_5(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    # Same canvas size, black corners: what a slightly tilted re-upload looks like.
    return image.rotate(5, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))


def enhance_by(enhancer: type[ImageEnhance._Enhance], factor: float) -> TransformFn:
    def enhance(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return enhancer(image).enhance(factor)

    return enhance


def gaussian_blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius=2))


def gaussian_noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    noisy = pixels + rng.normal(0.0, 12.0, size=pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def text_overlay(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A meme-style caption in white with a black outline, at a random height."""
    result = image.copy()
    draw = ImageDraw.Draw(result)
    width, height = result.size
    size = max(8, height // 10)
    text = "look what I found #repost"
    font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=2)
    x = max(0, (width - (right - left)) // 2)
    y = int(rng.integers(0, max(1, height - (bottom - top))))
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


def emoji_logo_overlay(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Two smiley 'stickers' at random places and a logo badge in a corner."""
    result = image.copy()
    draw = ImageDraw.Draw(result)
    width, height = result.size
    diameter = max(4, min(width, height) // 5)
    for _ in range(2):
        x = int(rng.integers(0, max(1, width - diameter)))
        y = int(rng.integers(0, max(1, height - diameter)))
        _draw_smiley(draw, x, y, diameter)
    badge_w, badge_h = max(8, width // 5), max(6, height // 12)
    corner = int(rng.integers(0, 4))
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


def letterbox_pad(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Black bars above and below, each 1/8 of the height (a widescreen letterbox)."""
    width, height = image.size
    bar = max(1, height // 8)
    canvas = Image.new("RGB", (width, height + 2 * bar), (0, 0, 0))
    canvas.paste(image, (0, bar))
    return canvas


def screenshot_embed(image: Image.Image, rng: np.random.Generator) -> Image.Image:
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
    draw.ellipse((margin, top, margin + avatar, top + avatar), fill=tuple(rng.integers(40, 220, 3)))
    line_h = max(2, avatar // 4)
    draw.rounded_rectangle(
        (margin + avatar + margin, top + line_h, canvas_w * 3 // 5, top + 2 * line_h),
        radius=line_h // 2,
        fill=(60, 60, 70),
    )
    canvas.paste(image, (margin, status_h + header_h))
    for row in range(3):
        y = status_h + header_h + height + margin + row * 2 * line_h
        right = canvas_w - margin - int(rng.integers(0, canvas_w // 3))
        draw.rounded_rectangle(
            (margin, y, right, y + line_h), radius=line_h // 2, fill=(150, 150, 160)
        )
    return canvas


TRANSFORMS: dict[str, ImageTransform] = {
    t.name: t
    for t in [
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
    ]
}


def select_transforms(names: list[str] | None) -> list[ImageTransform]:
    """The named transforms (all when `names` is None); unknown names raise ValueError."""
    if names is None:
        return list(TRANSFORMS.values())
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise ValueError(
            f"unknown transform(s) {', '.join(unknown)}; known: {', '.join(TRANSFORMS)}"
        )
    return [TRANSFORMS[n] for n in names]
