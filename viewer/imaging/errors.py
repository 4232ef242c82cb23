"""Errors raised by the rendering pipeline.

Every error is a :class:`RenderError` with a short, patient-data-free ``detail``, a ``code`` from
the project's error vocabulary (``crossread.errors.ErrorCode`` values, repeated here as strings so
this package needs no Django) and the HTTP ``status`` a view should answer with.
"""

from __future__ import annotations


class RenderError(Exception):
    """Base class: the instance or the request cannot be rendered."""

    status: int = 422
    code: str = "unprocessable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidParameter(RenderError):
    """A request parameter (window, viewport, quality, frame syntax...) is malformed or absurd."""

    status = 400
    code = "bad_request"


class InvalidWindow(InvalidParameter):
    """The window (center, width, function) is not one PS3.3 C.11.2.1.2 can apply."""


class InvalidViewport(InvalidParameter):
    """The viewport or source region is empty, outside the image or too large."""


class FrameNotFound(RenderError):
    """The 1-based frame number is not in ``1..NumberOfFrames``."""

    status = 404
    code = "not_found"


class UnsupportedTransferSyntax(RenderError):
    """No installed decoder handles the instance's transfer syntax."""

    status = 415
    code = "unsupported_media_type"


class UnsupportedMediaType(RenderError):
    """The requested output media type cannot be encoded (an ``Accept`` mismatch)."""

    status = 406
    code = "not_acceptable"


class NotAnImage(RenderError):
    """The instance has no pixel data, or pixel attributes this pipeline cannot present."""

    status = 422
    code = "unprocessable"


class CorruptPixelData(RenderError):
    """The file or its pixel data cannot be parsed or decoded (truncated, invalid attributes)."""

    status = 422
    code = "unprocessable"


class ImageTooLarge(RenderError):
    """Decoding would allocate more memory than the configured limits (a decompression bomb)."""

    status = 413
    code = "too_large"
