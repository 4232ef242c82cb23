"""Geometry: the WADO-RS ``viewport`` parameter (PS3.18 8.3.5.1.3) and Deep Zoom pyramids.

A viewport ``vw,vh[,sx,sy,sw,sh]`` selects the source region ``sx,sy,sw,sh`` of the frame
(default: the whole frame; a negative ``sw`` or ``sh`` takes the region to the left of / above
``sx,sy`` and flips it) and scales it to fit ``vw x vh`` keeping the aspect ratio.

The Deep Zoom layout is the one OpenSeadragon's ``DziTileSource`` reads: level ``L`` of
``max_level + 1`` is the image scaled by ``2 ** (L - max_level)`` (sizes rounded up), cut in
``tile_size`` tiles, each extended by ``overlap`` pixels on every side that has a neighbour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image

from .errors import InvalidParameter, InvalidViewport

#: Largest rendered width or height accepted, in pixels.
MAX_VIEWPORT_SIZE = 8192


@dataclass(frozen=True)
class Region:
    """A resolved viewport: source rectangle (in frame pixels), flips and output size."""

    x: int
    y: int
    width: int
    height: int
    flip_x: bool
    flip_y: bool
    out_width: int
    out_height: int

    @property
    def downscales(self) -> bool:
        """True when the output is smaller than the source region (and nowhere larger)."""
        return (self.out_width, self.out_height) != (self.width, self.height) and (
            self.out_width <= self.width and self.out_height <= self.height
        )

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The source rectangle of `image` (a view), flipped as requested."""
        view = image[self.y : self.y + self.height, self.x : self.x + self.width]
        if self.flip_x:
            view = view[:, ::-1]
        if self.flip_y:
            view = view[::-1]
        return view

    def scale(self, cropped: np.ndarray) -> np.ndarray:
        """Scale the output of :meth:`crop` (uint8, grey or RGB) to the output size.

        Down-scaling averages the source pixels each output pixel covers (a box filter: exact area
        averaging, no ringing at sharp edges, and several times faster than Lanczos); up-scaling is
        bilinear.
        """
        size = (self.out_width, self.out_height)
        if size == (cropped.shape[1], cropped.shape[0]):
            return np.ascontiguousarray(cropped)
        picture = Image.fromarray(np.ascontiguousarray(cropped))
        if self.out_width < self.width or self.out_height < self.height:
            picture = picture.resize(size, Image.Resampling.BOX)
        else:
            picture = picture.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(picture)


@dataclass(frozen=True)
class Viewport:
    """The WADO-RS rendered ``viewport`` (PS3.18 8.3.5.1.3).

    Attributes
    ----------
    vw, vh : int
        Viewport size in pixels.
    sx, sy : int
        Top-left corner of the source region (default 0, 0).
    sw, sh : int or None
        Source region size; ``None`` extends to the frame's edge; negative values flip.
    fit : bool
        Keep the aspect ratio, fitting inside ``vw x vh`` (WADO-RS). ``False`` scales to exactly
        ``vw x vh``, as Deep Zoom tiles need.
    """

    vw: int
    vh: int
    sx: int = 0
    sy: int = 0
    sw: int | None = None
    sh: int | None = None
    fit: bool = True

    def resolve(self, columns: int, rows: int) -> Region:
        """Resolve this viewport against a frame of `columns` x `rows` pixels.

        Raises
        ------
        InvalidViewport
            For a viewport or region that is empty, too large or not inside the frame.
        """
        if not (1 <= self.vw <= MAX_VIEWPORT_SIZE and 1 <= self.vh <= MAX_VIEWPORT_SIZE):
            raise InvalidViewport(f"The viewport size must be within 1..{MAX_VIEWPORT_SIZE}.")
        x, width, flip_x = _axis(self.sx, self.sw, columns, "horizontal")
        y, height, flip_y = _axis(self.sy, self.sh, rows, "vertical")
        if self.fit:
            scale = min(self.vw / width, self.vh / height)
            out_width = min(self.vw, max(1, round(width * scale)))
            out_height = min(self.vh, max(1, round(height * scale)))
        else:
            out_width, out_height = self.vw, self.vh
        return Region(x, y, width, height, flip_x, flip_y, out_width, out_height)


def _axis(start: int, size: int | None, extent: int, name: str) -> tuple[int, int, bool]:
    """Resolve one axis of a source region to (first pixel, length, flipped)."""
    if size is None:
        size = extent - start
    if size == 0:
        raise InvalidViewport(f"The {name} size of the source region must not be 0.")
    flipped = size < 0
    first = start + size if flipped else start
    length = abs(size)
    if first < 0 or first + length > extent:
        raise InvalidViewport(f"The source region is outside the frame ({name}).")
    return first, length, flipped


def parse_viewport(text: str) -> Viewport:
    """Parse ``vw,vh[,sx,sy,sw,sh]`` (PS3.18 8.3.5.1.3); empty ``sx``.. fields take defaults.

    Raises
    ------
    InvalidViewport
        When the text is not 2 or 6 comma-separated integers.
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 6):
        raise InvalidViewport("The viewport parameter must be vw,vh[,sx,sy,sw,sh].")
    try:
        numbers = [int(part) if part else None for part in parts]
    except ValueError as exc:
        raise InvalidViewport("The viewport values must be integers.") from exc
    if numbers[0] is None or numbers[1] is None:
        raise InvalidViewport("The viewport width and height are required.")
    if len(numbers) == 2:
        return Viewport(numbers[0], numbers[1])
    sx, sy, sw, sh = numbers[2:]
    return Viewport(numbers[0], numbers[1], sx or 0, sy or 0, sw, sh)


@dataclass(frozen=True)
class Tile:
    """One Deep Zoom tile: its rectangle in level pixels and in full-resolution frame pixels."""

    level: int
    col: int
    row: int
    x: int
    y: int
    width: int
    height: int
    source_x: int
    source_y: int
    source_width: int
    source_height: int

    @property
    def viewport(self) -> Viewport:
        """The viewport that renders this tile at exactly ``width x height``."""
        return Viewport(
            self.width,
            self.height,
            self.source_x,
            self.source_y,
            self.source_width,
            self.source_height,
            fit=False,
        )


@dataclass(frozen=True)
class DeepZoom:
    """The Deep Zoom pyramid of a ``width x height`` image (layout read by OpenSeadragon).

    Raises
    ------
    InvalidParameter
        For a non-positive size, a tile size outside 1..4096 or an overlap outside 0..tile size.
    """

    width: int
    height: int
    tile_size: int = 256
    overlap: int = 1

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise InvalidParameter("The image size must be positive.")
        if not 1 <= self.tile_size <= 4096:
            raise InvalidParameter("The tile size must be within 1..4096.")
        if not 0 <= self.overlap < self.tile_size:
            raise InvalidParameter("The overlap must be within 0..tile size - 1.")

    @property
    def max_level(self) -> int:
        """Index of the full-resolution level, ``ceil(log2(max(width, height)))``."""
        return math.ceil(math.log2(max(self.width, self.height)))

    @property
    def levels(self) -> int:
        """Number of levels; level 0 is 1x1 pixel."""
        return self.max_level + 1

    def _check_level(self, level: int) -> None:
        if not 0 <= level <= self.max_level:
            raise InvalidParameter(f"The level must be within 0..{self.max_level}.")

    def level_size(self, level: int) -> tuple[int, int]:
        """(width, height) of `level`: the image scaled by ``2 ** (level - max_level)``, rounded up."""
        self._check_level(level)
        factor = 2 ** (self.max_level - level)
        return -(-self.width // factor), -(-self.height // factor)

    def tile_grid(self, level: int) -> tuple[int, int]:
        """(columns, rows) of tiles at `level`."""
        width, height = self.level_size(level)
        return -(-width // self.tile_size), -(-height // self.tile_size)

    def tile(self, level: int, col: int, row: int) -> Tile:
        """Tile ``(level, col, row)``: ``x = col * tile_size - overlap`` (no overlap on the first
        column), width ``tile_size`` plus the overlap on each side that has a neighbour, clipped
        to the level; the source rectangle is that rectangle scaled to full resolution and
        clipped to the image.

        Raises
        ------
        InvalidParameter
            For a level, column or row outside the pyramid.
        """
        columns, rows = self.tile_grid(level)
        if not (0 <= col < columns and 0 <= row < rows):
            raise InvalidParameter("The tile is outside the pyramid level.")
        level_width, level_height = self.level_size(level)
        x, width = self._tile_span(col, level_width)
        y, height = self._tile_span(row, level_height)
        factor = 2 ** (self.max_level - level)
        source_x, source_y = x * factor, y * factor
        source_width = min((x + width) * factor, self.width) - source_x
        source_height = min((y + height) * factor, self.height) - source_y
        return Tile(
            level, col, row, x, y, width, height, source_x, source_y, source_width, source_height
        )

    def _tile_span(self, index: int, extent: int) -> tuple[int, int]:
        start = index * self.tile_size - (self.overlap if index > 0 else 0)
        size = self.tile_size + (self.overlap if index > 0 else 0) + self.overlap
        return start, min(size, extent - start)


def dzi_xml(width: int, height: int, tile_size: int = 256, overlap: int = 1, format: str = "jpeg") -> str:
    """The ``.dzi`` descriptor OpenSeadragon loads for a Deep Zoom pyramid.

    Raises
    ------
    InvalidParameter
        For an invalid size, tile size or overlap (see :class:`DeepZoom`) or format.
    """
    DeepZoom(width, height, tile_size, overlap)
    if format not in ("jpeg", "jpg", "png", "webp"):
        raise InvalidParameter("The tile format must be jpeg, jpg, png or webp.")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
        f"Format={quoteattr(format)} Overlap=\"{overlap}\" TileSize=\"{tile_size}\">"
        f'<Size Width="{width}" Height="{height}"/></Image>'
    )
