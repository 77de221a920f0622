"""FFHQ-style face alignment from the 68 iBUG landmarks (dlib's shape predictor numbering).

A generator only knows faces framed the way its training faces were, so a photo must be cut
the same way before projection. The FFHQ recipe (Karras et al. 2019, ffhq-dataset) derives an
oriented square from the eyes and the mouth:
  x axis: the eye-to-eye vector combined with the eye-to-mouth vector turned by 90 degrees (robust
          to either being short), scaled to max(2 |eye-to-eye|, 1.8 |eye-to-mouth|);
  centre: the eyes' midpoint moved 10 % of the way towards the mouth;
  the square has half-side |x| and its y axis is x turned by 90 degrees.
`zoom` > 1 cuts a tighter square (e.g. for UTKFace-like crops), `shift_y` moves the centre down
by that fraction of the side. Outside the photo, the square is filled by reflection that fades
into a blurred, median-coloured border, as in FFHQ.

Landmark detection uses dlib (`pip install dlib-bin face-recognition-models`), imported only
when a photo is aligned: the math here works from given landmarks without it.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)  # left/right in the picture
MOUTH_LEFT, MOUTH_RIGHT = 48, 54


class FaceNotFound(ValueError):
    pass


class AlignmentUnavailable(RuntimeError):
    pass


def face_quad(landmarks, zoom: float = 1.0, shift_y: float = 0.0) -> np.ndarray:
    """(68, 2) landmarks (x, y) -> the aligned square's corners (4, 2): top-left, bottom-left,
    bottom-right, top-right (PIL's QUAD order)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 (x, y) landmarks, got an array of shape {lm.shape}")
    eye_left, eye_right = lm[LEFT_EYE].mean(0), lm[RIGHT_EYE].mean(0)
    eye_mid, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    eye_to_mouth = (lm[MOUTH_LEFT] + lm[MOUTH_RIGHT]) / 2 - eye_mid
    # rot90(v) = (-v_y, v_x); for an upright face rot90(eye_to_mouth) points against eye_to_eye,
    # so both terms add up along the eye line.
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) / zoom
    y = np.array([-x[1], x[0]])  # rot90(x): down the face
    c = eye_mid + eye_to_mouth * 0.1 + 2 * y * shift_y
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def to_aligned(points, quad: np.ndarray, size: int) -> np.ndarray:
    """Where photo points land in the aligned size x size image (the inverse of the QUAD map)."""
    p = np.asarray(points, dtype=np.float64) - quad[0]
    ex, ey = quad[3] - quad[0], quad[1] - quad[0]  # the square's x and y edges
    return np.stack([p @ ex / (ex @ ex), p @ ey / (ey @ ey)], axis=-1) * size


def align_face(image: Image.Image, landmarks, size: int = 256, zoom: float = 1.0, shift_y: float = 0.0) -> Image.Image:
    img = image.convert("RGB")
    quad = face_quad(landmarks, zoom, shift_y)
    side = np.hypot(*(quad[3] - quad[0]))
    # Shrink first when the square is much larger than the output: one antialiased resize
    # instead of aliasing in the bilinear quad sampling.
    shrink = int(np.floor(side / size * 0.5))
    if shrink > 1:
        img = img.resize((round(img.width / shrink), round(img.height / shrink)), Image.LANCZOS)
        quad, side = quad / shrink, side / shrink
    img, quad = _pad_for(img, quad, side)
    work = 2 * size  # sample at twice the output size, then reduce with an antialiasing filter
    out = img.transform((work, work), Image.QUAD, tuple((quad + 0.5).flatten()), Image.BILINEAR)
    return out.resize((size, size), Image.LANCZOS)


def align_mask(mask: Image.Image, landmarks, size: int, zoom: float = 1.0, shift_y: float = 0.0) -> Image.Image:
    """An "L" mask of the photo cut along the same square as align_face (no padding tricks:
    outside the photo the mask reads 0)."""
    quad = face_quad(landmarks, zoom, shift_y)
    return mask.convert("L").transform((size, size), Image.QUAD, tuple((quad + 0.5).flatten()), Image.BILINEAR)


def _pad_for(img: Image.Image, quad: np.ndarray, side: float) -> tuple[Image.Image, np.ndarray]:
    border = max(int(round(side * 0.1)), 3)
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = np.maximum([border - lo[0], border - lo[1], hi[0] - img.width + border, hi[1] - img.height + border], 0)
    if pad.max() <= border - 4:
        return img, quad
    pad = np.maximum(pad, int(round(side * 0.3)))
    left, top, right, bottom = (int(v) for v in pad)
    arr = np.asarray(img, dtype=np.float32)
    arr = np.pad(arr, ((top, bottom), (left, right), (0, 0)), mode="reflect" if min(arr.shape[:2]) > max(pad) else "edge")
    h, w = arr.shape[:2]
    ys, xs = np.ogrid[:h, :w]
    # 0 inside the photo, rising to 1 at the outer edge of the padding
    fade = np.maximum(1 - np.minimum(xs / max(left, 1), (w - 1 - xs) / max(right, 1)),
                      1 - np.minimum(ys / max(top, 1), (h - 1 - ys) / max(bottom, 1)))[..., None]
    fade = np.clip(fade, 0, 1).astype(np.float32)
    blurred = np.asarray(Image.fromarray(np.uint8(np.clip(arr, 0, 255))).filter(
        ImageFilter.GaussianBlur(float(side) * 0.02)), dtype=np.float32)
    arr += (blurred - arr) * np.clip(fade * 3 + 1, 0, 1)
    arr += (np.median(arr, axis=(0, 1)) - arr) * fade
    return Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255))), quad + [left, top]


# --- landmark detection (dlib) ------------------------------------------------------------------------------------
_DETECTOR: dict = {}
INSTALL_HINT = ("face alignment needs dlib and its 68-landmark model: pip install dlib-bin face-recognition-models "
                "(or pass --no-align for a photo that is already an aligned face crop)")


def _dlib():
    if not _DETECTOR:
        try:
            import dlib
        except ImportError:
            raise AlignmentUnavailable(INSTALL_HINT) from None
        # face_recognition_models' own __init__ imports pkg_resources (gone from new setuptools):
        # find its data folder without importing it.
        spec = importlib.util.find_spec("face_recognition_models")
        model = spec and Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
        if not model or not model.is_file():
            raise AlignmentUnavailable(INSTALL_HINT)
        _DETECTOR.update(detector=dlib.get_frontal_face_detector(), predictor=dlib.shape_predictor(str(model)))
    return _DETECTOR["detector"], _DETECTOR["predictor"]


def detect_landmarks(image: Image.Image) -> np.ndarray:
    """The 68 landmarks (x, y) of the largest face found; FaceNotFound when there is none."""
    detector, predictor = _dlib()
    arr = np.asarray(image.convert("RGB"))
    faces = list(detector(arr, 1))  # one upsampling: finds faces down to ~40 px
    if not faces:
        raise FaceNotFound("no face found in the image; for a photo that is already an aligned face crop, "
                           "pass --no-align (align=False)")
    face = max(faces, key=lambda r: r.width() * r.height())
    shape = predictor(arr, face)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)


def align_photo(image: Image.Image, size: int, zoom: float = 1.0, shift_y: float = 0.0) -> Image.Image:
    return align_face(image, detect_landmarks(image), size, zoom, shift_y)
