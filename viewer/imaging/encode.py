"""Encoding rendered pixels for HTTP: JPEG (simplejpeg/libjpeg-turbo, else Pillow), PNG, WebP, GIF."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .errors import InvalidParameter, UnsupportedMediaType

try:
    import simplejpeg
except ImportError:  # pragma: no cover - simplejpeg is a dependency; Pillow is the fallback
    simplejpeg = None

#: Output media types, in the order a server should prefer them.
MEDIA_TYPES: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp", "image/gif")

#: zlib level for PNG: 1 is several times faster than the default 6 for ~10 % more bytes.
PNG_COMPRESS_LEVEL = 1


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or not (
        image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
    ):
        raise InvalidParameter("Only 8-bit grey (H, W) or RGB (H, W, 3) images can be encoded.")
    return np.ascontiguousarray(image)


def _encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    if simplejpeg is not None:
        if image.ndim == 2:
            return simplejpeg.encode_jpeg(image[..., np.newaxis], quality, colorspace="GRAY")
        return simplejpeg.encode_jpeg(image, quality, colorspace="RGB", colorsubsampling="444")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def _encode_pillow(image: np.ndarray, media_type: str, quality: int) -> bytes:
    picture = Image.fromarray(image)
    buffer = io.BytesIO()
    if media_type == "image/png":
        picture.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif media_type == "image/webp":
        picture.save(buffer, "WEBP", quality=quality, method=0)
    else:  # image/gif: grey is already 8-bit indexed; RGB is quantised to 256 colours
        if picture.mode == "RGB":
            picture = picture.quantize(256, method=Image.Quantize.MEDIANCUT)
        picture.save(buffer, "GIF")
    return buffer.getvalue()


def encode(image: np.ndarray, media_type: str = "image/jpeg", quality: int = 90) -> bytes:
    """Encode a rendered image.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 (H, W) grey or (H, W, 3) RGB, as returned by ``render_frame``.
    media_type : str
        One of :data:`MEDIA_TYPES`.
    quality : int
        1-100, for the lossy formats (JPEG, WebP), as the WADO-RS ``quality`` parameter
        (PS3.18 8.3.5.1.2).

    Raises
    ------
    UnsupportedMediaType
        For another media type.
    InvalidParameter
        For a quality outside 1..100 or an image that is not 8-bit grey or RGB.
    """
    if media_type not in MEDIA_TYPES:
        raise UnsupportedMediaType(f"Rendered images are available as {', '.join(MEDIA_TYPES)}.")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InvalidParameter("The quality must be an integer within 1..100.")
    image = _check_image(image)
    if media_type == "image/jpeg":
        return _encode_jpeg(image, quality)
    return _encode_pillow(image, media_type, quality)
