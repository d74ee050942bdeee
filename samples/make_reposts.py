"""Simulate a folder of collected reposts for the demo: edited copies of some reported
images, unrelated images, and a broken file. Usage: make_reposts.py SAMPLES_DIR OUT_DIR"""

import sys
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

samples, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)


def load(name: str) -> Image.Image:
    return Image.open(samples / f"{name}.jpg").convert("RGB")


kingfisher = load("kingfisher")
kingfisher.resize((kingfisher.width // 2, kingfisher.height // 2)).save(
    out / "repost-small.jpg", quality=40
)
load("macaws").rotate(90, expand=True).save(out / "repost-rotated.png")
ImageEnhance.Brightness(ImageOps.mirror(load("fruit_stand"))).enhance(1.3).save(
    out / "mirrored.webp"
)
for name in ("salad_bowl", "paper_clips", "red_knobbed_starfish"):
    load(name).save(out / f"unrelated-{name}.jpg", quality=85)
(out / "broken.jpg").write_bytes((samples / "kingfisher.jpg").read_bytes()[:2000])
(out / "notes.jpg").write_text("this is a text file pretending to be an image\n")
print(f"wrote simulated reposts to {out}")
