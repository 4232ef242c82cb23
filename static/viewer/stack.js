// A series as a stack of images: one item per frame, in InstanceNumber order (as the page's
// outline lists them), with geometry from the series' DICOM JSON metadata once it arrives.
import { numbers, value, values } from "./api.js";

export class Stack {
  /** `outline` is the study's outline from the page (study UID, patient, date, description). */
  constructor(outline, series) {
    this.study = outline.study;
    this.studyInfo = outline;
    this.series = series.uid;
    this.number = series.number;
    this.description = series.description || "";
    this.modality = series.modality || "";
    this.items = [];
    for (const [sop, frames, rows, columns] of series.instances) {
      for (let frame = 1; frame <= frames; frame += 1) this.items.push({ sop, frame, rows, columns, meta: null });
    }
    this.metadata = new Map(); // sop -> DICOM JSON
  }

  get length() { return this.items.length; }

  indexOf(sop, frame = 1) {
    return this.items.findIndex((item) => item.sop === sop && item.frame === frame);
  }

  /** Attach the series metadata (an array of DICOM JSON objects, one per instance). */
  setMetadata(list) {
    for (const item of list) this.metadata.set(value(item, "SOPInstanceUID"), item);
    for (const item of this.items) item.meta = describe(this.metadata.get(item.sop), item.frame);
  }
}

function functionalGroup(meta, frame, sequence) {
  const perFrame = values(meta, "PerFrameFunctionalGroupsSequence")[frame - 1];
  const shared = values(meta, "SharedFunctionalGroupsSequence")[0];
  for (const group of [perFrame, shared]) {
    const found = values(group, sequence)[0];
    if (found) return found;
  }
  return null;
}

/** What the viewer needs of one frame: size, spacing, position, orientation, window, units. */
export function describe(meta, frame = 1) {
  if (!meta) return null;
  const measures = functionalGroup(meta, frame, "PixelMeasuresSequence");
  const plane = functionalGroup(meta, frame, "PlanePositionSequence");
  const orientation = functionalGroup(meta, frame, "PlaneOrientationSequence");
  const voi = functionalGroup(meta, frame, "FrameVOILUTSequence");
  let spacing = numbers(meta, "PixelSpacing");
  let calibration = "PixelSpacing";
  if (spacing.length !== 2 && measures) spacing = numbers(measures, "PixelSpacing");
  if (spacing.length !== 2) {
    spacing = numbers(meta, "ImagerPixelSpacing");
    calibration = "ImagerPixelSpacing";
    const magnification = numbers(meta, "EstimatedRadiographicMagnificationFactor")[0];
    if (spacing.length === 2 && magnification) {
      spacing = spacing.map((s) => s / magnification);
      calibration = "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor";
    }
  }
  if (spacing.length !== 2 || !(spacing[0] > 0 && spacing[1] > 0)) { spacing = null; calibration = "none"; }
  if (spacing) [spacing, calibration] = radiographSpacing(meta, spacing, calibration);
  const position = numbers(plane || meta, "ImagePositionPatient");
  const iop = numbers(orientation || meta, "ImageOrientationPatient");
  const centers = numbers(voi || meta, "WindowCenter");
  const widths = numbers(voi || meta, "WindowWidth");
  const photometric = value(meta, "PhotometricInterpretation") || "MONOCHROME2";
  const modality = value(meta, "Modality") || "";
  const rescaleType = value(meta, "RescaleType") || (modality === "CT" ? "HU" : "");
  let location = numbers(meta, "SliceLocation")[0];
  if (location === undefined && position.length === 3 && iop.length === 6) {
    const n = cross(iop.slice(0, 3), iop.slice(3));
    location = position[0] * n[0] + position[1] * n[1] + position[2] * n[2];
  }
  return {
    rows: Number(value(meta, "Rows")), columns: Number(value(meta, "Columns")),
    spacing, calibration, position, orientation: iop.length === 6 ? iop : null, location,
    frameOfReference: value(meta, "FrameOfReferenceUID") || null,
    thickness: numbers(meta, "SliceThickness")[0],
    window: centers.length && widths.length ? { center: centers[0], width: widths[0] } : null,
    windows: centers.map((c, i) => ({ center: c, width: widths[i] })).filter((w) => w.width > 0),
    color: photometric.startsWith("RGB") || photometric.startsWith("YBR") || photometric === "PALETTE COLOR"
      || Number(value(meta, "SamplesPerPixel")) === 3,
    monochrome1: photometric === "MONOCHROME1",
    modality, units: rescaleType === "HU" ? "HU" : rescaleType,
    bitsStored: Number(value(meta, "BitsStored")) || 16,
    signed: Number(value(meta, "PixelRepresentation")) === 1,
    slope: numbers(meta, "RescaleSlope")[0] ?? 1, intercept: numbers(meta, "RescaleIntercept")[0] ?? 0,
    frameTime: numbers(meta, "FrameTime")[0],
    // spatially calibrated ultrasound regions: lengths in mm inside one (annotations/calibration.py)
    // (SequenceOfUltrasoundRegions 0018,6011; PhysicalUnitsX/YDirection 0018,6024/6026: 3 = cm)
    ultrasoundRegions: values(meta, "00186011").filter((r) => numbers(r, "00186024")[0] === 3 && numbers(r, "00186026")[0] === 3).length,
  };
}

const PROJECTION = ["CR", "DX", "MG", "IO", "PX", "RF", "XA", "RG"];

/** A projection radiograph's PixelSpacing by PS3.3 10.7.1.3, as the server decides (annotations.geometry):
 * equal to ImagerPixelSpacing it is the detector's (magnification corrected when the factor is known),
 * different it is calibrated, alone its plane is unknown. */
function radiographSpacing(meta, spacing, calibration) {
  if (calibration !== "PixelSpacing" || !PROJECTION.includes(value(meta, "Modality") || "")) return [spacing, calibration];
  const imager = numbers(meta, "ImagerPixelSpacing");
  if (imager.length !== 2) return [spacing, "PixelSpacing/projection"];
  if (imager.some((s, i) => Math.abs(s - spacing[i]) > 1e-6 * s)) return [spacing, "PixelSpacing/calibrated"];
  const magnification = numbers(meta, "EstimatedRadiographicMagnificationFactor")[0];
  return magnification > 0 ? [imager.map((s) => s / magnification), "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"] : [imager, "ImagerPixelSpacing"];
}

function cross(a, b) {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/** Patient-direction letters of a direction cosine (LPS): e.g. [1,0,0] -> "L", [0,-0.7,0.7] -> "AH". */
export function directionLetters(vector) {
  const names = [["R", "L"], ["A", "P"], ["F", "H"]];
  return vector
    .map((component, axis) => ({ component, axis }))
    .filter(({ component }) => Math.abs(component) > 0.25)
    .sort((a, b) => Math.abs(b.component) - Math.abs(a.component))
    .map(({ component, axis }) => names[axis][component > 0 ? 1 : 0])
    .join("");
}

/** Letters for the four edges of an image with this ImageOrientationPatient. */
export function orientationLetters(iop) {
  if (!iop) return null;
  const row = iop.slice(0, 3);
  const column = iop.slice(3, 6);
  const negate = (v) => v.map((x) => -x);
  return { right: directionLetters(row), left: directionLetters(negate(row)), bottom: directionLetters(column), top: directionLetters(negate(column)) };
}

/** A window that covers the stored range, for images that declare none. */
export function fallbackWindow(meta) {
  if (!meta) return { center: 0, width: 1 };
  const max = meta.signed ? 2 ** (meta.bitsStored - 1) - 1 : 2 ** meta.bitsStored - 1;
  const min = meta.signed ? -(2 ** (meta.bitsStored - 1)) : 0;
  const low = min * meta.slope + meta.intercept;
  const high = max * meta.slope + meta.intercept;
  return { center: (low + high) / 2, width: Math.max(1, high - low) };
}
