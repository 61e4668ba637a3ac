// Inline SVG icons (the machines may have no emoji font). Path data is static code.

const NS = "http://www.w3.org/2000/svg";
const PATHS = {
  up: ["M7 10v11", "M15 5.9 14 10h5.8a2 2 0 0 1 2 2.3l-1.4 7A2 2 0 0 1 18.5 21H7V10l4.5-7.3A1.9 1.9 0 0 1 15 5.9z"],
  down: ["M17 14V3", "M9 18.1 10 14H4.2a2 2 0 0 1-2-2.3l1.4-7A2 2 0 0 1 5.5 3H17v11l-4.5 7.3A1.9 1.9 0 0 1 9 18.1z"],
  upload: ["M12 15V3", "m7 8 5-5 5 5", "M4 15v4a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-4"],
  plus: ["M12 5v14", "M5 12h14"],
  close: ["M18 6 6 18", "M6 6l12 12"],
};

export function icon(name, size = 18) {
  const svg = document.createElementNS(NS, "svg");
  for (const [k, v] of Object.entries({ width: size, height: size, viewBox: "0 0 24 24",
    fill: "none", stroke: "currentColor", "stroke-width": 2, "stroke-linecap": "round",
    "stroke-linejoin": "round", "aria-hidden": "true", class: "icon" })) {
    svg.setAttribute(k, String(v));
  }
  for (const d of PATHS[name]) {
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}
