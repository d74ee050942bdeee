"""Builds what `make demo` needs from the bundled samples (all benign, public domain/CC0):

- OUT/intake/: what a victim reported: two photos, a short video (a pan-and-zoom slideshow
  of two other photos), a sound clip and a Korean text post;
- OUT/site/: a small forum served on 127.0.0.1 and crawled, with planted copies (a cropped
  photo, the video letterboxed and re-encoded, a pitch-shifted excerpt of the sound, the
  post rewritten with Korean evasions) among unrelated photos, a video, a tune and posts.

Usage: make_demo.py SAMPLES_DIR OUT_DIR
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile
from ansim.benchmarks.audio_transforms import pitch
from ansim.benchmarks.text_evasions import homoglyphs, jamo_split, zero_width
from ansim.benchmarks.video_dataset import (
    EncodeSettings,
    SlideshowSpec,
    letterbox,
    read_frames,
    synthesize_slideshow,
    write_video,
)
from PIL import Image

# A fictional doxxing post: the kind of text a stalking victim reports.
POST = (
    "이 여자 집 주소는 서울시 마포구 예시로 12길 34, 전화번호는 010-2468-1357 입니다. "
    "매일 저녁 7시에 퇴근하니까 다들 찾아가서 사진 찍어 올려 주세요."
)
CHATTER = [
    "오늘 경기 정말 재밌었어요 다음 주도 기대됩니다",
    "주말에 비 온다던데 등산 계획 있으신 분?",
    "새로 생긴 분식집 떡볶이 맛있네요 추천합니다",
    "Does anyone know a good bike repair shop near the station?",
]
FPS = 15.0


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>{title}</title>'
        f'</head><body><h1>{title}</h1>{body}<p><a href="/index.html">목록</a></p></body></html>'
    )


def chatter(count: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(f"<p>{n + 1}번째 댓글: {rng.choice(CHATTER)}</p>" for n in range(count))


def tune(rate: int, seconds: float, seed: int) -> np.ndarray:
    """An unrelated sound: a synthesized melody of plucked notes."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(rate * seconds), dtype=np.float32)
    step = int(rate * 0.25)
    for start in range(0, len(out) - step, step):
        freq = 220 * 2 ** (rng.integers(0, 24) / 12)
        t = np.arange(step) / rate
        out[start : start + step] += 0.3 * np.sin(2 * np.pi * freq * t) * np.exp(-6 * t)
    return out


def main(samples: Path, out: Path) -> None:
    intake, site = out / "intake", out / "site"
    for folder in (intake / "photos", site / "board", site / "media"):
        folder.mkdir(parents=True, exist_ok=True)
    images = samples / "images"

    # What the victim reported.
    for name in ("kingfisher", "macaws"):
        shutil.copy(images / f"{name}.jpg", intake / "photos" / f"{name}.jpg")
    spec = SlideshowSpec(
        width=480, height=270, duration_s=8.0, seconds_per_shot=4.0, encode=EncodeSettings(fps=FPS)
    )
    clip = synthesize_slideshow(
        [images / "fruit_stand.jpg", images / "salad_bowl.jpg"], intake / "clip.mp4", spec, 3
    )
    sound, rate = soundfile.read(
        samples / "audio" / "hungarian-dance-5-excerpt.ogg", dtype="float32"
    )
    shutil.copy(samples / "audio" / "hungarian-dance-5-excerpt.ogg", intake / "song.ogg")
    (intake / "post.txt").write_text(POST + "\n", encoding="utf-8")

    # Planted copies.
    kingfisher = Image.open(images / "kingfisher.jpg").convert("RGB")
    w, h = kingfisher.size
    kingfisher.crop((int(w * 0.18), int(h * 0.12), w, int(h * 0.94))).save(
        site / "media" / "travel-0412.jpg", quality=80
    )
    frames, _fps = read_frames(clip)
    write_video(
        site / "media" / "clip-hd.mp4",
        (letterbox(f, 0.15) for f in frames[round(1.5 * FPS) : round(7.5 * FPS)]),
        EncodeSettings(fps=FPS, crf=30),
    )
    excerpt = sound[int(2 * rate) : int(10 * rate)]
    shifted, _ = pitch(1.0)(excerpt, rate, np.random.default_rng(0))
    soundfile.write(site / "media" / "bgm-remix.wav", shifted, rate, subtype="PCM_16")
    rng = random.Random(5)
    evasive = zero_width(homoglyphs(jamo_split(POST, rng), rng), rng)

    # Distractors.
    Image.open(images / "paper_clips.jpg").convert("RGB").save(
        site / "media" / "desk.jpg", quality=85
    )
    Image.open(images / "red_knobbed_starfish.jpg").convert("RGB").save(
        site / "media" / "beach.jpg", quality=85
    )
    synthesize_slideshow(
        [images / "paper_clips.jpg", images / "red_knobbed_starfish.jpg"],
        site / "media" / "vlog.mp4",
        SlideshowSpec(width=480, height=270, duration_s=4.0, encode=EncodeSettings(fps=FPS)),
        seed=9,
    )
    soundfile.write(site / "media" / "tune.wav", tune(rate, 8.0, seed=2), rate, subtype="PCM_16")

    pages = {
        "travel": (
            "여행 사진 모음",
            '<img src="/media/beach.jpg"><img src="/media/travel-0412.jpg">',
        ),
        "desk": ("책상 정리 인증", '<img src="/media/desk.jpg">' + chatter(6, 1)),
        "video": ("영상 공유", '<video src="/media/clip-hd.mp4" controls></video>' + chatter(4, 2)),
        "vlog": ("브이로그", '<video controls><source src="/media/vlog.mp4"></video>'),
        "music": ("배경음악 리믹스", '<audio src="/media/bgm-remix.wav" controls></audio>'),
        "tune": ("작곡 연습", '<audio src="/media/tune.wav" controls></audio>' + chatter(3, 3)),
        "post": ("자유게시판", chatter(8, 4) + f"<p>{evasive}</p>" + chatter(6, 5)),
        "chat": ("잡담", chatter(12, 6)),
    }
    links = []
    for slug, (title, body) in pages.items():
        (site / "board" / f"{slug}.html").write_text(page(title, body), encoding="utf-8")
        links.append(f'<li><a href="/board/{slug}.html">{title}</a></li>')
    (site / "index.html").write_text(page("데모 게시판", f"<ul>{''.join(links)}</ul>"), "utf-8")
    print(f"intake in {intake}; demo site in {site} ({len(pages)} pages)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
