// Annotation state: the annotations the viewer knows, local writes with a pluggable transport,
// and remote events pushed in by the collaboration layer. No drawing here (see overlay.js).
//
// Transport contract (docs/viewer.md):
//   create(fields) -> Promise<annotation>          fields: {instance, frame, kind, points, label, client_ref}
//   update(id, version, fields) -> Promise<annotation>   rejects with {status: 409, body: {annotation}} when stale
//   remove(id) -> Promise
//   list(query) -> Promise<annotation[]>            query: {study} | {instance} | {series}
// applyRemote({type: "created"|"updated"|"deleted", annotation}) merges others' changes.
import { requestJson } from "./api.js";

const byId = new Map(); // id (number, or "local:<client_ref>" while a create is in flight) -> annotation
const listeners = new Set();
let transport = null;

export function restTransport(project) {
  const base = `/api/projects/${encodeURIComponent(project)}/annotations/`;
  return {
    scope: "project", // the project's own marks (the viewer's exports are of these: measurements.js)
    create: (fields) => requestJson(base, { method: "POST", body: fields }),
    update: (id, version, fields) => requestJson(`${base}${id}/`, { method: "PATCH", body: { version, ...fields } }),
    remove: (id) => requestJson(`${base}${id}/`, { method: "DELETE" }),
    list: async (query) => (await requestJson(`${base}?${new URLSearchParams(query)}`)).annotations,
  };
}

export function setTransport(next) { transport = next; }
export function getTransport() { return transport; }

export function subscribe(listener) { listeners.add(listener); return () => listeners.delete(listener); }
function changed(reason) { for (const listener of listeners) listener(reason); }

export function all() { return [...byId.values()]; }
export function get(id) { return byId.get(id); }
export function forImage(instance, frame) {
  return all().filter((a) => a.instance === instance && a.frame === frame && !a.plane && !a.deleted);
}

/** The marks of a reformatted plane ({series, plane, index}; mpr.js). */
export function forPlane({ series, plane, index }) {
  return all().filter((a) => a.plane && a.plane.series === series && a.plane.plane === plane && a.plane.index === index && !a.deleted);
}

/** The marks of a viewport's item: a frame of an instance, or a reformatted plane. */
export function forItem(item) { return item.plane ? forPlane(item.plane) : forImage(item.sop, item.frame); }

/** The fields naming the image of a create, from a stack item or an annotation: {instance, frame},
 * or {plane: {series, plane, index}} on a reformatted plane. */
export function imageFields(x) {
  if (x.plane) return { plane: { series: x.plane.series, plane: x.plane.plane, index: x.plane.index } };
  return { instance: x.instance !== undefined ? x.instance : x.sop, frame: x.frame };
}

function localKey(clientRef) { return `local:${clientRef}`; }

function put(annotation) {
  const current = byId.get(annotation.id);
  if (current && !current.pending && current.version > annotation.version) return; // older news
  if (annotation.client_ref) byId.delete(localKey(annotation.client_ref));
  if (annotation.deleted) byId.delete(annotation.id);
  else byId.set(annotation.id, { ...annotation, pending: false });
}

export async function load(query) {
  const list = await transport.list(query);
  for (const annotation of list) put(annotation);
  changed("load");
  return list;
}

function newClientRef() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).slice(0, 64);
}

/** Create: shown at once (pending), replaced by the server's answer (with its measurements). */
export async function create(fields, { author = "" } = {}) {
  const clientRef = newClientRef();
  const local = { id: localKey(clientRef), version: 0, author, label: "", measurements: null, ...fields, client_ref: clientRef, pending: true };
  byId.set(local.id, local);
  changed("create");
  try {
    const saved = await transport.create({ ...fields, client_ref: clientRef });
    byId.delete(local.id); // also when the transport's answer does not echo client_ref
    put(saved);
    changed("created");
    return byId.get(saved.id) || saved;
  } catch (error) {
    byId.delete(local.id);
    changed("failed");
    throw error;
  }
}

/** Update points and/or label, based on `version` (default: the version known now); on a conflict
 * the server's current state wins and the error is rethrown. */
export async function update(id, fields, { version } = {}) {
  const current = byId.get(id);
  if (!current || current.pending) throw new Error("The annotation is still being saved.");
  byId.set(id, { ...current, ...fields, pending: true });
  changed("update");
  try {
    const saved = await transport.update(id, version ?? current.version, fields);
    put(saved);
    changed("updated");
    return saved;
  } catch (error) {
    const server = error && error.body && error.body.annotation;
    if (server) put(server);
    else byId.set(id, current);
    changed("failed");
    throw error;
  }
}

export async function remove(id) {
  const current = byId.get(id);
  if (!current) return;
  byId.delete(id);
  changed("remove");
  try {
    await transport.remove(id);
  } catch (error) {
    if (!(error && error.status === 404)) { byId.set(id, current); changed("failed"); throw error; }
  }
}

/** Others' changes, from the collaboration layer: {type: "created"|"updated"|"deleted", annotation}. */
export function applyRemote(event) {
  const annotation = event && event.annotation;
  if (!annotation || annotation.id === undefined) return;
  if (event.type === "deleted") {
    byId.delete(annotation.id);
  } else {
    put(annotation);
  }
  changed(`remote-${event.type}`);
}
