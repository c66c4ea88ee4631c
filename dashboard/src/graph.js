// @ts-check
// The job graph: a layered layout of vertices (columns by longest path from a source) drawn as
// SVG, each vertex coloured by where its time goes, as Flink's web UI does: red for busy,
// blue for idle, black for backpressured.

import * as fmt from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 240;
const BOX_H = 112;
const GAP_X = 110;
const GAP_Y = 36;
const PAD = 16;

/**
 * @typedef {{ id: number, name: string, parallelism: number }} GraphVertex
 * @typedef {{ source: number, target: number, partitioner: string, side_output: string | null }} GraphEdge
 * @typedef {{ busy: number | null, idle: number | null, backpressured: number | null,
 *   inRate: number | null, outRate: number | null, inputWatermark: number | null,
 *   outputWatermark: number | null, recordsIn: number, recordsOut: number }} VertexFigures
 */

/**
 * Column and row of every vertex: its column is the longest path from a source, rows are
 * in vertex order within a column.
 * @param {GraphVertex[]} vertices
 * @param {GraphEdge[]} edges
 * @returns {Map<number, {x: number, y: number}>}
 */
export function layout(vertices, edges) {
  /** @type {Map<number, number>} */
  const depth = new Map(vertices.map((v) => [v.id, 0]));
  // Longest path by relaxation; a job graph is acyclic, and the pass count bounds it anyway.
  for (let pass = 0; pass < vertices.length; pass += 1) {
    let changed = false;
    for (const e of edges) {
      const d = (depth.get(e.source) ?? 0) + 1;
      if (d > (depth.get(e.target) ?? 0)) {
        depth.set(e.target, d);
        changed = true;
      }
    }
    if (!changed) break;
  }
  /** @type {Map<number, number>} */
  const rows = new Map();
  /** @type {Map<number, {x: number, y: number}>} */
  const at = new Map();
  for (const v of vertices) {
    const col = depth.get(v.id) ?? 0;
    const row = rows.get(col) ?? 0;
    rows.set(col, row + 1);
    at.set(v.id, { x: PAD + col * (BOX_W + GAP_X), y: PAD + row * (BOX_H + GAP_Y) });
  }
  return at;
}

/**
 * Flink's colouring: busy is red, idle blue, backpressured black, mixed by their shares.
 * Returns a CSS colour, or `null` before the first measurement.
 * @param {VertexFigures} f
 */
export function vertexColour(f) {
  if (f.busy === null || f.idle === null || f.backpressured === null) return null;
  const total = f.busy + f.idle + f.backpressured;
  if (total <= 0) return null;
  const busy = f.busy / total;
  const idle = f.idle / total;
  const bp = f.backpressured / total;
  // busy #d43a2f, idle #2f6fd4, backpressured #202020.
  const r = Math.round(busy * 212 + idle * 47 + bp * 32);
  const g = Math.round(busy * 58 + idle * 111 + bp * 32);
  const b = Math.round(busy * 47 + idle * 212 + bp * 32);
  return `rgb(${r}, ${g}, ${b})`;
}

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @param {string} [text]
 */
function el(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {string} s @param {number} n */
function clip(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/**
 * Draws the graph. `onOpen` is called with a vertex's ID when it is clicked or activated by
 * keyboard.
 * @param {GraphVertex[]} vertices
 * @param {GraphEdge[]} edges
 * @param {Map<number, VertexFigures>} figures
 * @param {number | null} selected
 * @param {(id: number) => void} onOpen
 * @returns {SVGSVGElement}
 */
export function render(vertices, edges, figures, selected, onOpen) {
  const at = layout(vertices, edges);
  let width = 0;
  let height = 0;
  for (const p of at.values()) {
    width = Math.max(width, p.x + BOX_W + PAD);
    height = Math.max(height, p.y + BOX_H + PAD);
  }
  const svg = /** @type {SVGSVGElement} */ (
    el("svg", {
      viewBox: `0 0 ${width} ${height}`,
      class: "graph",
      role: "group",
      "aria-label": "Job graph",
    })
  );
  // Through the CSSOM: the Content-Security-Policy refuses style attributes.
  svg.style.maxWidth = `${width}px`;
  const defs = el("defs", {});
  const marker = el("marker", {
    id: "arrow",
    viewBox: "0 0 10 10",
    refX: "10",
    refY: "5",
    markerWidth: "8",
    markerHeight: "8",
    orient: "auto-start-reverse",
  });
  marker.appendChild(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  defs.appendChild(marker);
  svg.appendChild(defs);

  for (const e of edges) {
    const s = at.get(e.source);
    const t = at.get(e.target);
    if (!s || !t) continue;
    const x1 = s.x + BOX_W;
    const y1 = s.y + BOX_H / 2;
    const x2 = t.x;
    const y2 = t.y + BOX_H / 2;
    const mx = (x1 + x2) / 2;
    const g = el("g", { class: "edge", "data-edge": `${e.source}-${e.target}` });
    g.appendChild(
      el("path", { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)" }),
    );
    const label = e.side_output ? `${e.partitioner} [${e.side_output}]` : e.partitioner;
    g.appendChild(el("text", { x: mx, y: (y1 + y2) / 2 - 6, "text-anchor": "middle", class: "edge-label" }, label));
    svg.appendChild(g);
  }

  for (const v of vertices) {
    const p = at.get(v.id);
    if (!p) continue;
    const f = figures.get(v.id);
    const colour = f ? vertexColour(f) : null;
    const g = el("g", {
      class: `vertex${selected === v.id ? " selected" : ""}`,
      "data-vertex-id": v.id,
      "data-vertex-name": v.name,
      "data-records-out": f ? f.recordsOut : 0,
      "data-records-in": f ? f.recordsIn : 0,
      tabindex: 0,
      role: "button",
      "aria-label": `${v.name}, parallelism ${v.parallelism}: open its subtasks`,
      transform: `translate(${p.x} ${p.y})`,
    });
    g.appendChild(el("title", {}, v.name));
    const box = /** @type {SVGRectElement} */ (el("rect", { width: BOX_W, height: BOX_H, rx: 8, class: "vertex-box" }));
    if (colour) box.style.fill = colour;
    g.appendChild(box);
    g.appendChild(el("text", { x: 10, y: 20, class: "vertex-name" }, clip(v.name, 28)));
    const busy = f ? share(f.busy, f) : null;
    const bp = f ? share(f.backpressured, f) : null;
    const lines = [
      `Parallelism ${v.parallelism}`,
      `In ${fmt.rate(f ? f.inRate : null)} · Out ${fmt.rate(f ? f.outRate : null)}`,
      `Busy ${fmt.percent(busy)} · Backpressured ${fmt.percent(bp)}`,
      `Watermark ${fmt.watermark(f ? (f.inputWatermark ?? f.outputWatermark) : null)}`,
    ];
    lines.forEach((line, i) => {
      g.appendChild(el("text", { x: 10, y: 42 + i * 18, class: "vertex-figure" }, clip(line, 40)));
    });
    const open = () => onOpen(v.id);
    g.addEventListener("click", open);
    g.addEventListener("keydown", (ev) => {
      const key = /** @type {KeyboardEvent} */ (ev).key;
      if (key === "Enter" || key === " ") {
        ev.preventDefault();
        open();
      }
    });
    svg.appendChild(g);
  }
  return svg;
}

/** @param {number | null} part @param {VertexFigures} f */
export function share(part, f) {
  if (part === null || f.busy === null || f.idle === null || f.backpressured === null) return null;
  const total = f.busy + f.idle + f.backpressured;
  return total > 0 ? part / total : null;
}
