// The browser side of the API: the key or the session, JSON calls, uploads with progress,
// SSE streams. Signed in with a password or SSO, the session is an HttpOnly cookie the page
// never sees; requests that change something carry the CSRF token from its readable cookie.

import { lang } from "./i18n.js";

const KEY = "zhiku.key";

export function getKey() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "";
}

export function setKey(key, remember) {
  sessionStorage.setItem(KEY, key);
  if (remember) localStorage.setItem(KEY, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_error";
  }
}

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "__Host-zhiku_csrf" || name === "zhiku_csrf") return rest.join("=");
  }
  return "";
}

function headers(extra) {
  const key = getKey();
  const out = {
    "Accept-Language": lang() === "en" ? "en" : "zh-TW",
    "X-Zhiku-Client": "web", // conversations started here are recorded as channel "web"
    ...extra,
  };
  if (key) out.Authorization = `Bearer ${key}`;
  else if (csrfToken()) out["X-CSRF-Token"] = csrfToken();
  return out;
}

export function hasSession() {
  return !getKey() && Boolean(csrfToken());
}

async function fail(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const err = new ApiError(res.status, body);
  if (res.status === 401) window.dispatchEvent(new CustomEvent("zhiku:unauthorized"));
  throw err;
}

export async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) await fail(res);
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export async function download(path, filename) {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) await fail(res);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Multipart upload with transfer progress (fetch cannot report upload progress).
export function upload(path, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const f of files) form.append("files", f, f.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new ApiError(0, null));
    xhr.send(form);
  });
}

// POST a JSON body and yield the Server-Sent Events of the response as objects.
export async function* stream(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify(body),
  });
  if (!res.ok) await fail(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data) yield JSON.parse(data);
    }
  }
}
