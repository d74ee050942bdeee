"""Geometric verification with local features: is the reference really inside the query?

ORB keypoints (binary, rotation-aware, fast on CPU) are matched with a ratio test, and a
homography is fitted with RANSAC (OpenCV's MAGSAC++). A match needs enough inliers that
spread over the reference and a homography that maps the reference frame to a sane,
convex quadrilateral. The homography then says where the reference sits in the query:
how much of it is visible (a crop), how much of the query it fills (a frame, screenshot
or paste), its rotation and its scale. A look-alike non-copy (another photo of a similar
scene) gives few inliers and no consistent geometry.

Reference banks keep these features (`LocalFeatures.to_blob`), since the reference media
itself is dropped after fingerprinting.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

SIGNAL_KIND = "orb"
WORK_SIDE = 512
MAX_FEATURES = 1000
# FAST corners detected before the spread-out selection keeps MAX_FEATURES of them.
DETECTION_POOL = 8000
RATIO = 0.8
REPROJECTION_PX = 5.0
MIN_MATCHES_TO_FIT = 8
HULL_MIN_INLIERS = 80
# A ratio match of two images (~1,500 x 1,500 descriptors) is small enough for one thread
# (see detector.faiss_threads).
SINGLE_THREAD_COMPARISONS = 1 << 26


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoint positions (n, 2) in a working frame of `width` x `height` pixels and
    their 32-byte ORB descriptors (n, 32): the first `fine` from the full-size frame,
    the rest from the half-size one."""

    points: np.ndarray
    descriptors: np.ndarray
    width: int
    height: int
    fine: int = -1  # -1: all of them

    @property
    def fine_count(self) -> int:
        return len(self.points) if self.fine < 0 else self.fine

    def __len__(self) -> int:
        return len(self.points)

    _HEADER = struct.Struct("<4sHHII")
    _MAGIC = b"ORB2"

    def to_blob(self) -> bytes:
        header = self._HEADER.pack(
            self._MAGIC, self.width, self.height, len(self.points), self.fine_count
        )
        return (
            header
            + self.points.astype(np.float16).tobytes()
            + self.descriptors.astype(np.uint8).tobytes()
        )

    @classmethod
    def from_blob(cls, blob: bytes) -> LocalFeatures:
        magic, width, height, count, fine = cls._HEADER.unpack_from(blob)
        if magic != cls._MAGIC:
            raise ValueError("not an ORB feature blob")
        offset = cls._HEADER.size
        points = np.frombuffer(blob, np.float16, count * 2, offset).astype(np.float32)
        offset += count * 2 * 2
        descriptors = np.frombuffer(blob, np.uint8, count * 32, offset)
        return cls(
            points.reshape(count, 2), descriptors.reshape(count, 32).copy(), width, height, fine
        )

    def summary(self) -> dict[str, object]:
        return {"keypoints": len(self), "frame": [self.width, self.height]}


def extract_local_features(rgb: np.ndarray, coarse: bool = True) -> LocalFeatures:
    """ORB keypoints of the image shrunk so its long side is at most WORK_SIDE, plus
    half as many from a half-size rendering (`coarse`).

    Keypoints are spread over an 8x8 grid (the strongest in each cell first), so a
    textured background cannot take every keypoint from a small pasted copy. The
    half-size keypoints let a copy shrunk into a screenshot or another picture meet
    features at its own scale. Items and references get the same features: a stored item
    is the reference side when a new reference is hunted through the crawl history.

    A query that is never stored may leave the half-size keypoints out (`coarse` False):
    the local-feature index is searched with full-size ones only, and a copy shrunk inside
    the query meets the reference's half-size ones. On `bench robust` every hard
    transform kept its recall without them, for a third less ORB and verification CPU
    (benchmarks/RESULTS.md, "crawl").
    """
    features = _spread_orb(_grey(rgb, WORK_SIDE), MAX_FEATURES)
    if not coarse:
        return features
    coarse = _spread_orb(_grey(rgb, WORK_SIDE // 2), MAX_FEATURES // 2)
    ratio = features.width / max(coarse.width, 1)
    return LocalFeatures(
        np.concatenate([features.points, coarse.points * ratio]),
        np.concatenate([features.descriptors, coarse.descriptors]),
        features.width,
        features.height,
        fine=len(features),
    )


def _grey(rgb: np.ndarray, side: int) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


def _spread_orb(grey: np.ndarray, count: int, grid: int = 8) -> LocalFeatures:
    import cv2

    height, width = grey.shape
    orb = cv2.ORB_create(nfeatures=DETECTION_POOL, fastThreshold=7, edgeThreshold=19, patchSize=19)
    detected = orb.detect(grey, None)
    empty = LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), width, height)
    if not detected:
        return empty
    # KeyPoint_convert and fromiter: a list of 9,000 keypoint tuples cost a third of this.
    points = cv2.KeyPoint_convert(detected)
    responses = np.fromiter((kp.response for kp in detected), np.float32, len(detected))
    column = np.minimum(points[:, 0] * grid // width, grid - 1)
    row = np.minimum(points[:, 1] * grid // height, grid - 1)
    cells = (row * grid + column).astype(np.int16)
    # Keep each cell's strongest first, then each cell's second, ... (ties: detection order).
    # Stable sorts of small integers are radix sorts: cheaper than two lexsorts.
    strongest_first = np.argsort(-responses, kind="stable")
    by_cell = strongest_first[np.argsort(cells[strongest_first], kind="stable")]
    sorted_cells = cells[by_cell]
    rank_in_cell = np.empty(len(by_cell), np.int64)
    rank_in_cell[by_cell] = np.arange(len(by_cell)) - np.searchsorted(
        sorted_cells, sorted_cells, side="left"
    )
    by_rank = strongest_first[np.argsort(rank_in_cell[strongest_first], kind="stable")]
    keypoints, descriptors = orb.compute(grey, [detected[i] for i in by_rank[:count]])
    if descriptors is None or not keypoints:
        return empty
    return LocalFeatures(cv2.KeyPoint_convert(keypoints), descriptors, width, height)


@dataclass(frozen=True)
class Verification:
    """The outcome of fitting the reference into the query."""

    matches: int
    inliers: int
    # Share of the reference's frame that lies inside the query (1.0 = uncropped).
    visible_share: float = 0.0
    # Share of the query's frame that the reference covers (1.0 = fills it).
    query_share: float = 0.0
    rotation_degrees: float = 0.0
    scale: float = 0.0
    # Share of the reference's frame spanned by the inliers' convex hull.
    inlier_spread: float = 0.0
    geometry_ok: bool = False
    # The reference's corners (top-left, top-right, bottom-right, bottom-left) projected
    # into the query, as shares of the query's width and height (outside 0..1 where the
    # copy is cropped); empty without a sane geometry.
    corners: tuple[tuple[float, float], ...] = ()

    def describe(self) -> str:
        if not self.geometry_ok:
            return f"no consistent geometry ({self.inliers} inliers of {self.matches} matches)"
        parts = [f"{self.inliers} local features agree on one geometry"]
        cropped = 1.0 - self.visible_share
        if cropped >= 0.12:  # estimates read a few percent low on uncropped copies
            parts.append(f"the reference appears cropped about {cropped:.0%}")
        if abs(self.rotation_degrees) >= 2:
            parts.append(f"rotated {self.rotation_degrees:+.0f} degrees")
        if self.query_share <= 0.85:
            parts.append(
                f"filling {self.query_share:.0%} of the item (inside a larger picture: "
                "a frame, screenshot or paste)"
            )
        return "; ".join(parts)

    def summary(self) -> dict[str, object]:
        return {
            "inliers": self.inliers,
            "matches": self.matches,
            "visible_share": round(self.visible_share, 3),
            "query_share": round(self.query_share, 3),
            "rotation_degrees": round(self.rotation_degrees, 1),
            "scale": round(self.scale, 3),
            "geometry_ok": self.geometry_ok,
            "corners": [list(corner) for corner in self.corners],
            "explanation": self.describe(),
        }


def _hull_area(points: np.ndarray) -> float:
    import cv2

    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(points.astype(np.float32))))


def _content_share(query: LocalFeatures, reference: LocalFeatures, inverse: np.ndarray) -> float:
    """Share of the reference's keypoint hull covered by the query's, mapped back."""
    import cv2

    if len(query) < 3 or len(reference) < 3:
        return 1.0
    query_hull = cv2.convexHull(query.points.astype(np.float32))
    reference_hull = cv2.convexHull(reference.points.astype(np.float32)).reshape(-1, 2)
    back = cv2.perspectiveTransform(query_hull.reshape(1, -1, 2), inverse)[0]
    reference_hull_area = float(cv2.contourArea(reference_hull))
    if reference_hull_area <= 0 or not cv2.isContourConvex(back.astype(np.float32)):
        return 1.0
    area, _ = cv2.intersectConvexConvex(back.astype(np.float32), reference_hull)
    return float(min(1.0, max(0.0, area) / reference_hull_area))


def _frame(width: int, height: int) -> np.ndarray:
    return np.asarray([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)


def _overlap_share(polygon: np.ndarray, frame: np.ndarray, of_area: float) -> float:
    import cv2

    area, _ = cv2.intersectConvexConvex(polygon.astype(np.float32), frame)
    return float(max(0.0, area) / of_area) if of_area > 0 else 0.0


def verify(query: LocalFeatures, reference: LocalFeatures) -> Verification:
    """Match the reference's features into the query's and fit a homography with RANSAC."""
    import cv2

    if len(query) < 2 or len(reference) < 2:
        return Verification(matches=0, inliers=0)
    reference_rows, query_rows = ratio_matches(reference.descriptors, query.descriptors)
    if len(reference_rows) < MIN_MATCHES_TO_FIT:
        return Verification(matches=len(reference_rows), inliers=0)
    source = reference.points[reference_rows]
    target = query.points[query_rows]
    homography, mask = cv2.findHomography(
        source, target, cv2.USAC_MAGSAC, REPROJECTION_PX, confidence=0.999, maxIters=2000
    )
    if homography is None or mask is None:
        return Verification(matches=len(reference_rows), inliers=0)
    inlier_mask = mask.ravel().astype(bool)
    inliers = int(inlier_mask.sum())
    return _describe_geometry(
        homography, source[inlier_mask], query, reference, len(reference_rows), inliers
    )


def ratio_matches(
    reference: np.ndarray, query: np.ndarray, ratio: float = RATIO
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of reference/query descriptors whose nearest neighbour passes Lowe's ratio test.

    FAISS's binary flat search does the Hamming k-NN: cheaper than OpenCV's brute-force
    matcher on the same data.
    """
    import faiss
    from ansim.detector.faiss_threads import faiss_threads_for

    if len(query) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    index = faiss.IndexBinaryFlat(256)
    index.add(np.ascontiguousarray(query, dtype=np.uint8))
    with faiss_threads_for(len(query) * len(reference), SINGLE_THREAD_COMPARISONS):
        distances, neighbours = index.search(np.ascontiguousarray(reference, dtype=np.uint8), 2)
    keep = (neighbours[:, 1] >= 0) & (distances[:, 0] < ratio * distances[:, 1])
    return np.nonzero(keep)[0], neighbours[keep, 0]


def _describe_geometry(
    homography: np.ndarray,
    reference_inliers: np.ndarray,
    query: LocalFeatures,
    reference: LocalFeatures,
    matches: int,
    inliers: int,
) -> Verification:
    import cv2

    reference_frame = _frame(reference.width, reference.height)
    query_frame = _frame(query.width, query.height)
    projected = cv2.perspectiveTransform(reference_frame[None], homography)[0]
    reference_area = float(reference.width * reference.height)
    query_area = float(query.width * query.height)
    linear = homography[:2, :2] / homography[2, 2]
    determinant = float(np.linalg.det(linear))
    scale = math.sqrt(abs(determinant))
    rotation = math.degrees(math.atan2(linear[1, 0] - linear[0, 1], linear[0, 0] + linear[1, 1]))
    hull_area = _hull_area(reference_inliers)
    convex = bool(cv2.isContourConvex(projected.astype(np.float32)))
    projected_area = abs(float(cv2.contourArea(projected.astype(np.float32))))
    geometry_ok = (
        convex
        and determinant > 0
        and 1 / 20 < projected_area / query_area < 20
        and 0.05 < scale < 20
    )
    visible = 0.0
    covered = 0.0
    if geometry_ok:
        covered = _overlap_share(projected, query_frame, query_area)
        inverse = np.linalg.inv(homography)
        back = cv2.perspectiveTransform(query_frame[None], inverse)[0]
        visible = (
            _overlap_share(back, reference_frame, reference_area)
            if cv2.isContourConvex(back.astype(np.float32))
            else min(1.0, covered * query_area / max(projected_area, 1e-9))
        )
        # Frames overstate what is visible when the query has fill (a rotated canvas's
        # corners map back onto cropped-away parts). Fill has no keypoints, so the query's
        # keypoint hull mapped back onto the reference's keypoint hull measures the content.
        visible = min(visible, _content_share(query, reference, inverse))
        # Inside another picture neither bound sees the crop; the inliers' extent over
        # the reference's keypoints does, once there are enough inliers to trace it
        # (it understates an uncropped copy by a few percent).
        keypoint_hull_area = _hull_area(reference.points)
        if inliers >= HULL_MIN_INLIERS and keypoint_hull_area > 0:
            visible = min(visible, hull_area / keypoint_hull_area)
    return Verification(
        matches=matches,
        inliers=inliers,
        visible_share=visible,
        query_share=covered,
        rotation_degrees=rotation,
        scale=scale,
        inlier_spread=hull_area / reference_area if reference_area else 0.0,
        geometry_ok=geometry_ok,
        corners=_normalised(projected, query.width, query.height) if geometry_ok else (),
    )


def _normalised(points: np.ndarray, width: int, height: int) -> tuple[tuple[float, float], ...]:
    return tuple(
        (round(float(x) / max(width, 1), 4), round(float(y) / max(height, 1), 4)) for x, y in points
    )
