"""Server-side rendering of DICOM frames: decode, Modality LUT, VOI, presentation, geometry, encode.

Pure Python + numpy/pydicom/Pillow: no Django here. Typical use by a WADO-RS ``rendered`` view::

    from viewer import imaging

    pixels = imaging.render_frame(
        ds, frame=1,
        window=imaging.parse_window("40,400,linear"),
        viewport=imaging.parse_viewport("512,512"),
        cache=FRAME_CACHE, key=(sop_instance_uid, stored_version),
    )
    body = imaging.encode(pixels, "image/jpeg", quality=90)

Every failure is a :class:`RenderError` subclass carrying ``status`` and ``code``.
"""

from .cache import FrameCache
from .codecs import (
    DEFAULT_LIMITS,
    TRANSFER_SYNTAX_FAMILIES,
    ImageHeader,
    Limits,
    capabilities,
    check_limits,
    decode_frame,
    is_available,
    load_dataset,
)
from .encode import MEDIA_TYPES, encode
from .errors import (
    CorruptPixelData,
    FrameNotFound,
    ImageTooLarge,
    InvalidParameter,
    InvalidViewport,
    InvalidWindow,
    NotAnImage,
    RenderError,
    UnsupportedMediaType,
    UnsupportedTransferSyntax,
)
from .geometry import DeepZoom, Region, Tile, Viewport, dzi_xml, parse_viewport
from .lut import (
    LookupTable,
    Rescale,
    Window,
    apply_modality_lut,
    apply_voi,
    apply_voi_lut,
    apply_windowing,
    file_voi,
    full_range_window,
    modality_transform,
    parse_window,
)
from .presentation import apply_presentation_lut, color_to_rgb8, palette_lut
from .presets import CT_ORDER, PRESETS, REGIONS, body_region, preset_orders, preset_window, presets_for
from .render import (
    PreparedFrame,
    auto_window,
    downscale_prepared,
    grey_lookup_table,
    prepare_frame,
    render_frame,
    render_prepared,
)

__all__ = [
    "auto_window",
    "DEFAULT_LIMITS",
    "MEDIA_TYPES",
    "PRESETS",
    "TRANSFER_SYNTAX_FAMILIES",
    "CorruptPixelData",
    "DeepZoom",
    "FrameCache",
    "FrameNotFound",
    "ImageHeader",
    "ImageTooLarge",
    "InvalidParameter",
    "InvalidViewport",
    "InvalidWindow",
    "Limits",
    "LookupTable",
    "NotAnImage",
    "PreparedFrame",
    "Region",
    "RenderError",
    "Rescale",
    "Tile",
    "UnsupportedMediaType",
    "UnsupportedTransferSyntax",
    "Viewport",
    "Window",
    "apply_modality_lut",
    "apply_presentation_lut",
    "apply_voi",
    "apply_voi_lut",
    "apply_windowing",
    "capabilities",
    "check_limits",
    "color_to_rgb8",
    "decode_frame",
    "downscale_prepared",
    "dzi_xml",
    "encode",
    "file_voi",
    "full_range_window",
    "grey_lookup_table",
    "is_available",
    "load_dataset",
    "modality_transform",
    "palette_lut",
    "parse_viewport",
    "parse_window",
    "prepare_frame",
    "CT_ORDER",
    "REGIONS",
    "body_region",
    "preset_orders",
    "preset_window",
    "presets_for",
    "render_frame",
    "render_prepared",
]
