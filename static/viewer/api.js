// HTTP helpers shared by the pages: CSRF token, JSON calls with Crossread's error shape,
// DICOMweb URLs, and DICOM JSON attribute access (PS3.18 F.2).

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** An error from the server: {code, detail, ...data} (crossread.errors), plus the HTTP status. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.body = body || {};
  }
}

export async function requestJson(url, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  const response = await fetch(url, init);
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text.slice(0, 200) }; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function dicomweb(project) {
  const root = `/projects/${encodeURIComponent(project)}/dicomweb`;
  const e = encodeURIComponent;
  return {
    root,
    studies: (params) => `${root}/studies${params ? "?" + new URLSearchParams(params) : ""}`,
    studyThumbnail: (s) => `${root}/studies/${e(s)}/thumbnail`,
    seriesThumbnail: (s, se) => `${root}/studies/${e(s)}/series/${e(se)}/thumbnail`,
    seriesMetadata: (s, se) => `${root}/studies/${e(s)}/series/${e(se)}/metadata`,
    frameRendered: (s, se, i, frame, params) =>
      `${root}/studies/${e(s)}/series/${e(se)}/instances/${e(i)}/frames/${frame}/rendered?${new URLSearchParams(params)}`,
    dzi: (i, frame) => `/projects/${e(project)}/tiles/${e(i)}/${frame}.dzi`,
    tile: (i, frame, level, col, row, params) =>
      `/projects/${e(project)}/tiles/${e(i)}/${frame}_files/${level}/${col}_${row}.jpeg${params ? "?" + new URLSearchParams(params) : ""}`,
  };
}

export async function dicomJson(url, { signal } = {}) {
  const response = await fetch(url, { headers: { Accept: "application/dicom+json" }, credentials: "same-origin", signal });
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, body);
  }
  return { data: response.status === 204 ? [] : await response.json(), warning: response.headers.get("Warning") };
}

// ---------------------------------------------------------------- DICOM JSON attributes

export const TAG = {
  PatientName: "00100010", PatientID: "00100020", StudyDate: "00080020", StudyTime: "00080030",
  AccessionNumber: "00080050", StudyDescription: "00081030", StudyInstanceUID: "0020000D",
  ModalitiesInStudy: "00080061", NumberOfStudyRelatedSeries: "00201206", NumberOfStudyRelatedInstances: "00201208",
  SeriesInstanceUID: "0020000E", SeriesNumber: "00200011", SeriesDescription: "0008103E", Modality: "00080060",
  SOPInstanceUID: "00080018", InstanceNumber: "00200013", NumberOfFrames: "00280008",
  Rows: "00280010", Columns: "00280011", PixelSpacing: "00280030", ImagerPixelSpacing: "00181164",
  EstimatedRadiographicMagnificationFactor: "00181114",
  ImagePositionPatient: "00200032", ImageOrientationPatient: "00200037", SliceLocation: "00201041",
  FrameOfReferenceUID: "00200052",
  SliceThickness: "00180050", WindowCenter: "00281050", WindowWidth: "00281051",
  WindowCenterWidthExplanation: "00281055", RescaleIntercept: "00281052", RescaleSlope: "00281053",
  RescaleType: "00281054", PhotometricInterpretation: "00280004", SamplesPerPixel: "00280002",
  BitsStored: "00280101", PixelRepresentation: "00280103", FrameTime: "00181063",
  SharedFunctionalGroupsSequence: "52009229", PerFrameFunctionalGroupsSequence: "52009230",
  PixelMeasuresSequence: "00289110", PlanePositionSequence: "00209113", PlaneOrientationSequence: "00209116",
  FrameVOILUTSequence: "00289132",
};

/** All values of an attribute (array) or []. */
export function values(item, keyword) {
  const element = item && item[TAG[keyword] || keyword];
  return (element && element.Value) || [];
}

/** The first value; person names as their alphabetic text; undefined when absent. */
export function value(item, keyword) {
  const first = values(item, keyword)[0];
  if (first && typeof first === "object" && "Alphabetic" in first) return first.Alphabetic;
  return first;
}

export function numbers(item, keyword) {
  return values(item, keyword).map(Number).filter((n) => Number.isFinite(n));
}

export function formatDate(da) {
  return da && /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : da || "";
}

export function formatName(pn) {
  return (pn || "").replace(/\^+/g, ", ").replace(/, $/, "");
}
