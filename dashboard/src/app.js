// @ts-check
// The Fjord dashboard: one page served by the JobManager at `/`, reading the REST API under
// `v1/` (relative, so it also works behind an Ingress path or `kubectl proxy`). It polls the
// API (every second, `?poll=<ms>` to change it), derives rates and time shares from
// successive samples, and renders the page named by the URL's hash:
//   #/overview  #/graph  #/graph/<vertex>  #/checkpoints  #/taskmanagers  #/exceptions
// Actions (savepoint, stop with savepoint, rescale, cancel) are confirmed in a dialog and
// followed on the overview until they end. When the API answers 401 (a JobManager with a REST
// token) the page shows a sign-in form instead and sends the token typed there (auth.js).

import * as auth from "./auth.js";
import * as fmt from "./format.js";
import * as graph from "./graph.js";

/**
 * @typedef {import("./types").JobDetails} JobDetails
 * @typedef {import("./types").JobList} JobList
 * @typedef {import("./types").CheckpointHistory} CheckpointHistory
 * @typedef {import("./types").CheckpointOverview} CheckpointOverview
 * @typedef {import("./types").ExceptionHistory} ExceptionHistory
 * @typedef {import("./types").TaskManagerList} TaskManagerList
 * @typedef {import("./types").TaskManagerDetails} TaskManagerDetails
 * @typedef {import("./types").ClusterConfig} ClusterConfig
 * @typedef {import("./types").SubtaskMetrics} SubtaskMetrics
 * @typedef {import("./types").SavepointStatus} SavepointStatus
 * @typedef {import("./types").RescaleStatus} RescaleStatus
 * @typedef {import("./graph.js").VertexFigures} VertexFigures
 * @typedef {{ kind: "savepoint" | "stop" | "rescale" | "cancel", triggerId: string,
 *   state: "IN_PROGRESS" | "COMPLETED" | "FAILED", detail: string, startedAt: number }} Operation
 * @typedef {{ at: number, job: JobDetails }} Sample
 */

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(200, Number(params.get("poll")) || 1000);
/** Rates are measured over the samples of this window. */
const RATE_WINDOW_MS = 5000;
/** Points kept for the throughput chart. */
const CHART_POINTS = 120;

/** Everything the pages show, refreshed by `poll`. */
const data = {
  /** @type {JobDetails | null} */ job: null,
  /** @type {CheckpointHistory | null} */ checkpoints: null,
  /** @type {CheckpointOverview | null} */ overview: null,
  /** @type {ExceptionHistory | null} */ exceptions: null,
  /** @type {TaskManagerList | null} */ taskManagers: null,
  /** @type {Map<string, TaskManagerDetails>} */ taskManagerDetails: new Map(),
  /** @type {ClusterConfig | null} */ config: null,
  /** @type {string | null} */ error: null,
  /**
   * Set while the API wants a token: the sign-in form is shown and polling waits for it.
   * @type {{ refused: boolean, message: string } | null}
   */
  signIn: null,
  /** @type {number} */ updatedAt: 0,
  /** Recent samples of the job, oldest first. @type {Sample[]} */ samples: [],
  /** Records per second out of the sources, oldest first. @type {{at: number, rate: number}[]} */
  throughput: [],
  /** Actions started from this page. @type {Operation[]} */ operations: [],
  /** The checkpoint history shows all (up to 100) rows instead of the latest. */
  allCheckpoints: false,
};

/** Rows of the checkpoint history shown until "Show all" is pressed. */
const HISTORY_ROWS = 15;

// ----- DOM helpers -----

/**
 * Creates an element. Strings become text nodes (never HTML), `null` children are skipped.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElement}
 */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = String(v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  return node;
}

/**
 * A table with a header row; `rows` cells are text or nodes.
 * @param {string[]} headers
 * @param {(Node | string | number)[][]} rows
 * @param {Record<string, any>} [props]
 */
function table(headers, rows, props = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      props,
      h("thead", {}, h("tr", {}, ...headers.map((x) => h("th", { scope: "col" }, x)))),
      h(
        "tbody",
        {},
        ...rows.map((r) => h("tr", {}, ...r.map((c, i) => h("td", { "data-label": headers[i] }, c)))),
      ),
    ),
  );
}

/**
 * A figure card.
 * @param {string} label
 * @param {Node | string} value
 * @param {string} name  `data-figure` attribute, for tests and styles
 * @param {string} [sub]
 */
function card(label, value, name, sub) {
  return h(
    "div",
    { class: "card", "data-figure": name },
    h("div", { class: "card-label" }, label),
    h("div", { class: "card-value" }, value),
    sub ? h("div", { class: "card-sub" }, sub) : null,
  );
}

/** @param {string} state */
function badge(state) {
  return h("span", { class: `badge state-${state.toLowerCase()}`, "data-state": state }, state);
}

// ----- REST -----

/**
 * GET or POST a JSON endpoint under `v1/`; throws an Error with the API's message.
 * @param {string} path  relative to the page, e.g. `v1/jobs`
 * @param {unknown} [body]  POSTed as JSON when given
 * @returns {Promise<any>}
 */
async function api(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: { ...auth.headers(), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  /** @type {any} */
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const message = json && json.message ? json.message : `HTTP ${response.status}`;
    if (response.status === 401) throw new auth.AuthError(message, auth.token() !== null);
    throw new Error(message);
  }
  return json;
}

/** @param {string} id */
const jobPath = (id) => `v1/jobs/${encodeURIComponent(id)}`;

// ----- figures derived from samples -----

/**
 * The sample to measure rates against: the oldest within the rate window, of the same
 * execution (counters only grow within one; a restart or rescale resets them).
 * @returns {Sample | null}
 */
function baseline() {
  const newest = data.samples[data.samples.length - 1];
  if (!newest) return null;
  for (const s of data.samples) {
    if (s === newest) return null;
    if (newest.at - s.at <= RATE_WINDOW_MS) return s;
  }
  return null;
}

/**
 * Rates and time shares of one subtask between two samples (`null` when not measurable).
 * @param {SubtaskMetrics} now
 * @param {SubtaskMetrics | undefined} before
 * @param {number} seconds
 */
function subtaskFigures(now, before, seconds) {
  const grew =
    before !== undefined &&
    now.records_in >= before.records_in &&
    now.records_out >= before.records_out &&
    now.busy_ms >= before.busy_ms;
  const d = (/** @type {number} */ a, /** @type {number} */ b) => (grew && seconds > 0 ? (a - b) / seconds : null);
  const b = before;
  return {
    inRate: b ? d(now.records_in, b.records_in) : null,
    outRate: b ? d(now.records_out, b.records_out) : null,
    bytesInRate: b ? d(now.bytes_in, b.bytes_in) : null,
    bytesOutRate: b ? d(now.bytes_out, b.bytes_out) : null,
    busy: b && grew ? now.busy_ms - b.busy_ms : null,
    idle: b && grew ? now.idle_ms - b.idle_ms : null,
    backpressured: b && grew ? now.backpressured_ms - b.backpressured_ms : null,
  };
}

/**
 * Figures of every vertex (sums over subtasks; shares of time over all subtasks).
 * @returns {Map<number, VertexFigures & { subtasks: Map<number, ReturnType<typeof subtaskFigures>> }>}
 */
function vertexFigures() {
  const newest = data.samples[data.samples.length - 1];
  /** @type {Map<number, VertexFigures & { subtasks: Map<number, ReturnType<typeof subtaskFigures>> }>} */
  const out = new Map();
  if (!newest) return out;
  const base = baseline();
  const seconds = base ? (newest.at - base.at) / 1000 : 0;
  for (const v of newest.job.vertices) {
    const before = base ? base.job.vertices.find((x) => x.id === v.id) : undefined;
    /** @type {Map<number, ReturnType<typeof subtaskFigures>>} */
    const subtasks = new Map();
    /** @type {VertexFigures} */
    const f = {
      busy: null,
      idle: null,
      backpressured: null,
      inRate: null,
      outRate: null,
      inputWatermark: null,
      outputWatermark: null,
      recordsIn: v.records_in,
      recordsOut: v.records_out,
    };
    const sum = (/** @type {number | null} */ a, /** @type {number | null} */ b) => (b === null ? a : (a ?? 0) + b);
    for (const s of v.subtasks) {
      const sf = subtaskFigures(s, before?.subtasks.find((x) => x.subtask === s.subtask), seconds);
      subtasks.set(s.subtask, sf);
      f.inRate = sum(f.inRate, sf.inRate);
      f.outRate = sum(f.outRate, sf.outRate);
      f.busy = sum(f.busy, sf.busy);
      f.idle = sum(f.idle, sf.idle);
      f.backpressured = sum(f.backpressured, sf.backpressured);
    }
    // A vertex's watermark is the minimum over its subtasks (what downstream sees).
    const min = (/** @type {(number | null)[]} */ xs) => {
      const known = xs.filter((x) => x !== null);
      return known.length === xs.length && known.length > 0 ? Math.min(.../** @type {number[]} */ (known)) : null;
    };
    f.inputWatermark = min(v.subtasks.map((s) => s.input_watermark));
    f.outputWatermark = min(v.subtasks.map((s) => s.output_watermark));
    out.set(v.id, Object.assign(f, { subtasks }));
  }
  return out;
}

/** Records per second the sources emit: the vertices nothing sends to. */
function sourceRate() {
  const job = data.job;
  if (!job) return null;
  const figures = vertexFigures();
  const targets = new Set(job.edges.map((e) => e.target));
  let total = null;
  for (const v of job.vertices) {
    if (targets.has(v.id)) continue;
    const r = figures.get(v.id)?.outRate ?? null;
    if (r !== null) total = (total ?? 0) + r;
  }
  return total;
}

// ----- polling -----

let polling = false;

async function poll() {
  if (polling) return;
  // Waiting for a token: nothing to ask the API until one is entered.
  if (data.signIn) {
    render();
    return;
  }
  polling = true;
  try {
    /** @type {JobList} */
    const list = await api("v1/jobs");
    const summary = list.jobs[0];
    if (!summary) {
      data.job = null;
      data.error = "The JobManager has no job yet.";
    } else {
      const path = jobPath(summary.id);
      const page = route().page;
      const [job, checkpoints, overview, exceptions, taskManagers] = await Promise.all([
        api(path),
        api(`${path}/checkpoints`),
        api(`${path}/checkpoints/overview`),
        api(`${path}/exceptions`),
        api("v1/taskmanagers"),
      ]);
      if (!data.config) data.config = await api("v1/config");
      if (page === "taskmanagers") {
        /** @type {TaskManagerList} */
        const tms = taskManagers;
        const details = await Promise.all(
          tms.task_managers.map((t) => api(`v1/taskmanagers/${encodeURIComponent(t.id)}`).catch(() => null)),
        );
        data.taskManagerDetails = new Map(details.filter((d) => d !== null).map((d) => [d.id, d]));
      }
      const now = performance.now();
      data.samples.push({ at: now, job });
      while (data.samples.length > 2 && now - data.samples[0].at > RATE_WINDOW_MS + 2 * POLL_MS) {
        data.samples.shift();
      }
      Object.assign(data, { job, checkpoints, overview, exceptions, taskManagers, error: null });
      const rate = sourceRate();
      if (rate !== null) {
        data.throughput.push({ at: Date.now(), rate });
        if (data.throughput.length > CHART_POINTS) data.throughput.shift();
      }
      await followOperations();
    }
    data.updatedAt = Date.now();
  } catch (e) {
    if (e instanceof auth.AuthError) needToken(e);
    else data.error = `Cannot reach the JobManager: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    polling = false;
  }
  render();
}

/**
 * The API answered 401: forget a refused token and the job's figures (they are the token
 * holder's), and show the sign-in form.
 * @param {InstanceType<typeof auth.AuthError>} e
 */
function needToken(e) {
  if (e.sent) auth.signOut();
  data.signIn = { refused: e.sent, message: e.message };
  Object.assign(data, { job: null, checkpoints: null, overview: null, exceptions: null, taskManagers: null, config: null, error: null });
  data.taskManagerDetails = new Map();
  data.samples = [];
  data.throughput = [];
}

/** Polls the status of every action still in progress. */
async function followOperations() {
  const job = data.job;
  if (!job) return;
  for (const op of data.operations) {
    if (op.state !== "IN_PROGRESS") continue;
    try {
      if (op.kind === "cancel") {
        if (["CANCELED", "FINISHED", "FAILED"].includes(job.state)) {
          op.state = job.state === "CANCELED" ? "COMPLETED" : "FAILED";
          op.detail = `the job is ${job.state}`;
        }
      } else if (op.kind === "rescale") {
        /** @type {RescaleStatus} */
        const s = await api(`${jobPath(job.id)}/rescale/${encodeURIComponent(op.triggerId)}`);
        op.state = s.state;
        op.detail =
          s.state === "FAILED"
            ? s.failure ?? "failed"
            : s.state === "COMPLETED"
              ? `running at parallelism ${s.parallelism}`
              : `to parallelism ${s.parallelism}${s.savepoint_path ? `, from ${s.savepoint_path}` : ""}`;
      } else {
        /** @type {SavepointStatus} */
        const s = await api(`${jobPath(job.id)}/savepoints/${encodeURIComponent(op.triggerId)}`);
        op.state = s.state;
        op.detail = s.state === "FAILED" ? s.failure ?? "failed" : s.path ?? op.detail;
      }
    } catch (e) {
      if (e instanceof auth.AuthError) throw e;
      op.state = "FAILED";
      op.detail = e instanceof Error ? e.message : String(e);
    }
  }
}

// ----- actions -----

/** A trigger ID: letters, digits and '-' only, unique enough per page. */
function triggerId(/** @type {string} */ kind) {
  return `dashboard-${kind}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Opens the confirmation dialog; `fields` are form controls shown in it. Resolves with true
 * when confirmed.
 * @param {string} title
 * @param {string} text
 * @param {HTMLElement[]} fields
 * @param {string} confirmLabel
 * @returns {Promise<boolean>}
 */
function confirmDialog(title, text, fields, confirmLabel) {
  const dialog = /** @type {HTMLDialogElement} */ (document.getElementById("confirm"));
  return new Promise((resolve) => {
    const error = h("p", { class: "dialog-error", role: "alert" });
    const finish = (/** @type {boolean} */ ok) => {
      if (ok) {
        const invalid = fields
          .map((f) => f.querySelector("input"))
          .find((i) => i instanceof HTMLInputElement && !i.checkValidity());
        if (invalid instanceof HTMLInputElement) {
          error.textContent = invalid.validationMessage;
          invalid.focus();
          return;
        }
      }
      dialog.close();
      resolve(ok);
    };
    dialog.replaceChildren(
      h(
        "div",
        { class: "dialog-body" },
        h("h2", {}, title),
        h("p", {}, text),
        ...fields,
        error,
        h(
          "div",
          { class: "dialog-buttons" },
          h("button", { type: "button", class: "secondary", "data-action": "dismiss", onclick: () => finish(false) }, "Back"),
          h("button", { type: "button", class: "danger", "data-action": "confirm", onclick: () => finish(true) }, confirmLabel),
        ),
      ),
    );
    dialog.onclose = () => resolve(false);
    dialog.showModal();
  });
}

/**
 * A labelled input.
 * @param {string} label
 * @param {Record<string, any>} props
 */
function field(label, props) {
  return h("label", { class: "field" }, h("span", {}, label), h("input", props));
}

/** @param {string} name */
function inputValue(name) {
  const input = document.querySelector(`#confirm input[name="${name}"]`);
  return input instanceof HTMLInputElement ? (input.type === "checkbox" ? String(input.checked) : input.value.trim()) : "";
}

/**
 * Starts an action after confirmation and follows it.
 * @param {Operation["kind"]} kind
 */
async function act(kind) {
  const job = data.job;
  if (!job) return;
  const defaultDir = data.overview?.settings.savepoint_dir ?? data.config?.savepoint_dir ?? "";
  const dirField = () =>
    field("Savepoint directory (a URL such as file:///… or s3://…)", {
      name: "directory",
      type: "text",
      value: defaultDir,
      required: !defaultDir,
      placeholder: "file:///var/fjord/savepoints",
      autocomplete: "off",
    });
  const maxParallelism = Math.min(...job.vertices.map((v) => v.max_parallelism));
  /** @type {Record<Operation["kind"], () => Promise<boolean>>} */
  const ask = {
    savepoint: () =>
      confirmDialog("Trigger a savepoint", `Write a savepoint of '${job.name}'; the job keeps running.`, [dirField()], "Trigger savepoint"),
    stop: () =>
      confirmDialog(
        "Stop with a savepoint",
        `Take a savepoint of '${job.name}' and stop it. Resume it later from that savepoint.`,
        [dirField(), h("label", { class: "field check" }, h("input", { type: "checkbox", name: "drain" }), h("span", {}, "Drain: emit the final watermark first (for a job that will not resume)"))],
        "Stop job",
      ),
    rescale: () =>
      confirmDialog(
        "Rescale",
        `Stop '${job.name}' with a savepoint and start it again from it at a new parallelism.`,
        [field(`New parallelism (1 to ${maxParallelism})`, { name: "parallelism", type: "number", min: 1, max: maxParallelism, required: true, value: "" })],
        "Rescale",
      ),
    cancel: () =>
      confirmDialog("Cancel the job", `Cancel '${job.name}' without a savepoint. Its state is kept only in retained checkpoints.`, [], "Cancel job"),
  };
  if (!(await ask[kind]())) return;
  const base = jobPath(job.id);
  /** @type {Operation} */
  const op = { kind, triggerId: "", state: "IN_PROGRESS", detail: "requested", startedAt: Date.now() };
  try {
    if (kind === "savepoint" || kind === "stop") {
      const directory = inputValue("directory") || null;
      const id = triggerId(kind);
      const body = { trigger_id: id, directory, drain: inputValue("drain") === "true" };
      await api(`${base}/${kind === "stop" ? "stop" : "savepoints"}`, body);
      op.triggerId = id;
      op.detail = directory ? `into ${directory}` : "into the configured directory";
    } else if (kind === "rescale") {
      const parallelism = Number(inputValue("parallelism"));
      const id = triggerId("rescale");
      await api(`${base}/rescale`, { parallelism, trigger_id: id });
      op.triggerId = id;
      op.detail = `to parallelism ${parallelism}`;
    } else {
      await api(`${base}/cancel`, {});
      op.triggerId = "cancel";
      op.detail = "cancelling";
    }
  } catch (e) {
    if (e instanceof auth.AuthError) {
      // With `security.rest.open-read-only` the page shows the job without a token, but
      // actions need one.
      needToken(e);
      render();
      return;
    }
    op.state = "FAILED";
    op.detail = e instanceof Error ? e.message : String(e);
  }
  data.operations.unshift(op);
  render();
}

// ----- pages -----

/** The page and vertex named by the URL's hash. */
function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const page = ["overview", "graph", "checkpoints", "taskmanagers", "exceptions"].includes(parts[0]) ? parts[0] : "overview";
  const vertex = page === "graph" && parts[1] !== undefined && parts[1] !== "" ? Number(parts[1]) : null;
  return { page, vertex: vertex !== null && Number.isFinite(vertex) ? vertex : null };
}

/** A chart of the sources' records per second over the last minutes. */
function throughputChart() {
  const points = data.throughput;
  const w = 600;
  const hgt = 120;
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...points.map((p) => p.rate));
  svg.setAttribute("aria-label", `Records per second out of the sources; peak ${fmt.rate(max)}`);
  for (const frac of [0.25, 0.5, 0.75]) {
    const line = document.createElementNS(svgNs, "line");
    line.setAttribute("x1", "0");
    line.setAttribute("x2", String(w));
    line.setAttribute("y1", String(hgt * frac));
    line.setAttribute("y2", String(hgt * frac));
    line.setAttribute("class", "grid");
    svg.appendChild(line);
  }
  if (points.length > 1) {
    const step = w / (CHART_POINTS - 1);
    const offset = CHART_POINTS - points.length;
    const coords = points.map((p, i) => `${((offset + i) * step).toFixed(1)},${(hgt - 4 - (p.rate / max) * (hgt - 8)).toFixed(1)}`);
    const area = document.createElementNS(svgNs, "polygon");
    area.setAttribute("points", `${(offset * step).toFixed(1)},${hgt} ${coords.join(" ")} ${w},${hgt}`);
    area.setAttribute("class", "area");
    svg.appendChild(area);
    const line = document.createElementNS(svgNs, "polyline");
    line.setAttribute("points", coords.join(" "));
    line.setAttribute("class", "line");
    svg.appendChild(line);
  }
  return h(
    "figure",
    { class: "chart-box" },
    svg,
    h("figcaption", {}, `Records/s out of the sources, last ${CHART_POINTS} samples · peak ${fmt.rate(points.length ? max : null)}`),
  );
}

function overviewPage() {
  const job = /** @type {JobDetails} */ (data.job);
  const history = data.checkpoints?.completed ?? [];
  const latestCp = history.find((c) => !c.savepoint);
  const latestSp = history.find((c) => c.savepoint);
  const now = Date.now();
  const parallelism = Math.max(0, ...job.vertices.map((v) => v.parallelism));
  const running = job.state === "RUNNING";
  return h(
    "section",
    { "data-page": "overview" },
    h("h1", {}, "Overview"),
    h(
      "div",
      { class: "cards" },
      card("State", badge(job.state), "state"),
      card("Uptime", fmt.duration(job.duration_ms), "uptime", `since ${fmt.time(job.start_time_ms)}`),
      card("Restarts", String(job.restarts), "restarts"),
      card("Parallelism", String(parallelism), "parallelism", `${job.vertices.length} vertices`),
      card("Records/s in", fmt.rate(sourceRate()), "throughput", "out of the sources"),
      card(
        "Latest checkpoint",
        latestCp ? `#${latestCp.id}` : "none yet",
        "latest-checkpoint",
        latestCp ? `${fmt.ago(latestCp.completed_at_ms, now)} · ${fmt.bytes(latestCp.size_bytes)}` : undefined,
      ),
      card(
        "Latest savepoint",
        latestSp ? `#${latestSp.id}` : "none",
        "latest-savepoint",
        latestSp ? `${fmt.ago(latestSp.completed_at_ms, now)} · ${latestSp.path}` : undefined,
      ),
    ),
    job.failure ? h("div", { class: "alert", role: "alert" }, h("strong", {}, "Failure: "), job.failure) : null,
    throughputChart(),
    h("h2", {}, "Actions"),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", "data-action": "savepoint", disabled: !running, onclick: () => act("savepoint") }, "Trigger savepoint"),
      h("button", { type: "button", "data-action": "stop", disabled: !running, onclick: () => act("stop") }, "Stop with savepoint"),
      h("button", { type: "button", "data-action": "rescale", disabled: !running, onclick: () => act("rescale") }, "Rescale"),
      h("button", { type: "button", class: "danger", "data-action": "cancel", disabled: job.state !== "RUNNING" && job.state !== "CREATED", onclick: () => act("cancel") }, "Cancel job"),
    ),
    data.operations.length
      ? table(
          ["Action", "State", "Started", "Details"],
          data.operations.map((op) => [
            op.kind,
            h("span", { class: `badge op-${op.state.toLowerCase()}`, "data-operation": op.kind, "data-operation-state": op.state }, op.state === "IN_PROGRESS" ? "IN PROGRESS…" : op.state),
            fmt.time(op.startedAt),
            op.detail,
          ]),
          { class: "operations" },
        )
      : h("p", { class: "muted" }, "Actions started here are followed until they end."),
    h("h2", {}, "Job"),
    table(
      ["Name", "ID", "Arguments", "Started"],
      [[job.name, h("code", {}, job.id), job.args.join(" ") || "–", fmt.time(job.start_time_ms)]],
    ),
  );
}

function graphPage() {
  const job = /** @type {JobDetails} */ (data.job);
  const { vertex: selected } = route();
  const figures = vertexFigures();
  const open = (/** @type {number} */ id) => {
    location.hash = `#/graph/${id}`;
  };
  const svg = graph.render(job.vertices, job.edges, figures, selected, open);
  const chosen = job.vertices.find((v) => v.id === selected);
  const legend = h(
    "p",
    { class: "legend" },
    h("span", { class: "swatch busy" }),
    "busy ",
    h("span", { class: "swatch idle" }),
    "idle ",
    h("span", { class: "swatch backpressured" }),
    "backpressured — shares of time over the last seconds",
  );
  return h(
    "section",
    { "data-page": "graph" },
    h("h1", {}, "Job graph"),
    legend,
    h("div", { class: "graph-wrap" }, svg),
    table(
      ["Vertex", "Parallelism", "Records/s in", "Records/s out", "Bytes/s in", "Bytes/s out", "Busy", "Backpressured", "Input watermark", "Output watermark"],
      job.vertices.map((v) => {
        const f = figures.get(v.id);
        /** Bytes per second summed over the vertex's subtasks. @param {"bytesInRate" | "bytesOutRate"} k */
        const bytesRate = (k) => {
          const rates = [...(f?.subtasks.values() ?? [])].map((s) => s[k]);
          return rates.length && rates.every((r) => r !== null) ? `${fmt.bytes(rates.reduce((a, b) => (a ?? 0) + (b ?? 0), 0) ?? 0)}/s` : "–";
        };
        return [
          h("a", { href: `#/graph/${v.id}`, "data-vertex-link": v.id }, v.name),
          String(v.parallelism),
          fmt.rate(f?.inRate ?? null),
          fmt.rate(f?.outRate ?? null),
          bytesRate("bytesInRate"),
          bytesRate("bytesOutRate"),
          fmt.percent(f ? graph.share(f.busy, f) : null),
          fmt.percent(f ? graph.share(f.backpressured, f) : null),
          fmt.watermark(f?.inputWatermark),
          fmt.watermark(f?.outputWatermark),
        ];
      }),
      { class: "vertices" },
    ),
    chosen ? subtasksOf(chosen, figures.get(chosen.id)?.subtasks) : h("p", { class: "muted" }, "Select a vertex to see its subtasks."),
  );
}

/**
 * @param {import("./types").Vertex} v
 * @param {Map<number, ReturnType<typeof subtaskFigures>> | undefined} figures
 */
function subtasksOf(v, figures) {
  const share = (/** @type {ReturnType<typeof subtaskFigures> | undefined} */ f, /** @type {"busy" | "idle" | "backpressured"} */ k) => {
    if (!f || f.busy === null || f.idle === null || f.backpressured === null) return null;
    const total = f.busy + f.idle + f.backpressured;
    return total > 0 ? /** @type {number} */ (f[k]) / total : null;
  };
  return h(
    "div",
    { class: "subtasks", "data-subtasks-of": v.id },
    h("h2", {}, `Subtasks of ${v.name}`),
    h("p", { class: "muted" }, `Operators: ${v.operators.join(" → ")} · max parallelism ${v.max_parallelism}`),
    table(
      ["Subtask", "Records in", "Records out", "Records/s in", "Records/s out", "Bytes/s in", "Bytes/s out", "Busy", "Idle", "Backpressured", "Input watermark", "Output watermark"],
      v.subtasks.map((s) => {
        const f = figures?.get(s.subtask);
        return [
          `${s.subtask + 1}/${v.parallelism}`,
          fmt.count(s.records_in),
          fmt.count(s.records_out),
          fmt.rate(f?.inRate ?? null),
          fmt.rate(f?.outRate ?? null),
          f?.bytesInRate != null ? `${fmt.bytes(f.bytesInRate)}/s` : "–",
          f?.bytesOutRate != null ? `${fmt.bytes(f.bytesOutRate)}/s` : "–",
          fmt.percent(share(f, "busy")),
          fmt.percent(share(f, "idle")),
          fmt.percent(share(f, "backpressured")),
          fmt.watermark(s.input_watermark),
          fmt.watermark(s.output_watermark),
        ];
      }),
    ),
  );
}

/**
 * The table of completed checkpoints or savepoints.
 * @param {import("./types").CheckpointInfo[]} rows
 */
function historyTable(rows) {
  return table(
    ["ID", "Type", "Completed", "Duration", "Size", "Path"],
    rows.map((c) => [
      `#${c.id}`,
      h("span", { class: c.savepoint ? "badge savepoint" : "badge checkpoint", "data-kind": c.savepoint ? "savepoint" : "checkpoint" }, c.savepoint ? "savepoint" : "checkpoint"),
      fmt.time(c.completed_at_ms),
      fmt.duration(c.duration_ms),
      fmt.bytes(c.size_bytes),
      h("code", { class: "path" }, c.path),
    ]),
    { class: "history" },
  );
}

/**
 * Checkpoints and savepoints waiting for acknowledgements: per vertex, how many of its subtasks
 * acknowledged so far (a vertex behind the others is where the barrier is stuck).
 * @param {import("./types").PendingCheckpointInfo[]} pending
 */
function pendingTable(pending) {
  const job = data.job;
  const name = (/** @type {number} */ id) => job?.vertices.find((v) => v.id === id)?.name ?? `vertex ${id}`;
  return table(
    ["ID", "Type", "Triggered", "Acknowledged", "Per vertex"],
    pending.map((c) => {
      const acked = c.vertices.reduce((n, v) => n + v.acknowledged, 0);
      const total = c.vertices.reduce((n, v) => n + v.parallelism, 0);
      return [
        h("span", { "data-in-flight": c.id }, `#${c.id}`),
        h("span", { class: c.savepoint ? "badge savepoint" : "badge checkpoint" }, c.savepoint ? "savepoint" : "checkpoint"),
        `${fmt.time(c.triggered_at_ms)} (${fmt.duration(Math.max(0, Date.now() - c.triggered_at_ms))} ago)`,
        h(
          "span",
          {},
          h("progress", { max: total, value: acked, "aria-label": `${acked} of ${total} subtasks` }),
          ` ${acked}/${total}`,
        ),
        h(
          "ul",
          { class: "acks" },
          ...c.vertices.map((v) =>
            h(
              "li",
              { "data-acks": v.vertex, "data-acknowledged": v.acknowledged, "data-parallelism": v.parallelism, class: v.acknowledged < v.parallelism ? "waiting" : "done" },
              `${name(v.vertex)}: ${v.acknowledged}/${v.parallelism}`,
            ),
          ),
        ),
      ];
    }),
    { class: "in-flight" },
  );
}

/**
 * Failed and aborted checkpoints and savepoints, newest first, with the reason.
 * @param {import("./types").FailedCheckpointInfo[]} rows
 */
function failedTable(rows) {
  return table(
    ["ID", "Type", "Triggered", "Failed", "Reason"],
    rows.map((c) => [
      h("span", { "data-failed-checkpoint": c.id }, `#${c.id}`),
      h("span", { class: c.savepoint ? "badge savepoint" : "badge checkpoint", "data-kind": c.savepoint ? "savepoint" : "checkpoint" }, c.savepoint ? "savepoint" : "checkpoint"),
      fmt.time(c.triggered_at_ms),
      fmt.time(c.failed_at_ms),
      h("span", { class: "reason" }, c.reason),
    ]),
    { class: "failed-history" },
  );
}

function checkpointsPage() {
  const o = data.overview;
  const pending = data.checkpoints?.in_progress ?? [];
  const failed = data.checkpoints?.failed_history ?? [];
  const history = data.checkpoints?.completed ?? [];
  const savepoints = history.filter((c) => c.savepoint);
  const inFlight = data.operations.filter((op) => op.state === "IN_PROGRESS" && (op.kind === "savepoint" || op.kind === "stop" || op.kind === "rescale"));
  return h(
    "section",
    { "data-page": "checkpoints" },
    h("h1", {}, "Checkpoints"),
    h(
      "div",
      { class: "cards" },
      card("Completed", String(o?.completed ?? "–"), "checkpoints-completed", "checkpoints over the job's life"),
      card("Failed", String(o?.failed ?? "–"), "checkpoints-failed", "checkpoints and savepoints"),
      card("Savepoints", String(o?.savepoints_completed ?? "–"), "savepoints-completed", `${o?.savepoints_in_progress ?? 0} in progress`),
      card("Restarts", String(o?.restarts ?? "–"), "checkpoint-restarts", "each restores the latest checkpoint"),
    ),
    h("h2", {}, "Restore point"),
    table(
      ["", ""],
      [
        ["Started from", o?.restored_from ?? "nothing (a fresh start)"],
        ["A restart restores", o?.latest ?? "nothing yet (no completed checkpoint)"],
      ],
      { class: "kv" },
    ),
    inFlight.length
      ? h(
          "div",
          {},
          h("h2", {}, "Actions in progress"),
          table(
            ["Action", "Started", "Details"],
            inFlight.map((op) => [op.kind, fmt.time(op.startedAt), op.detail]),
          ),
        )
      : null,
    h("h2", {}, "In flight"),
    pending.length
      ? pendingTable(pending)
      : h("p", { class: "muted", "data-empty": "in-flight" }, "No checkpoint waiting for acknowledgements."),
    h("h2", {}, "Savepoints"),
    savepoints.length
      ? historyTable(savepoints)
      : h("p", { class: "muted" }, "No savepoint taken by this job yet."),
    h("h2", {}, "History"),
    history.length
      ? historyTable(data.allCheckpoints ? history : history.slice(0, HISTORY_ROWS))
      : h("p", { class: "muted" }, "No checkpoint completed yet."),
    history.length > HISTORY_ROWS
      ? h(
          "button",
          {
            type: "button",
            class: "secondary",
            "data-action": "toggle-history",
            onclick: () => {
              data.allCheckpoints = !data.allCheckpoints;
              render();
            },
          },
          data.allCheckpoints ? `Show the latest ${HISTORY_ROWS}` : `Show all ${history.length}`,
        )
      : null,
    h("h2", {}, "Failed"),
    failed.length
      ? failedTable(failed.slice(0, HISTORY_ROWS))
      : h("p", { class: "muted", "data-empty": "failed" }, "No checkpoint or savepoint failed."),
    h("h2", {}, "Configuration"),
    table(
      ["", ""],
      [
        ["Mode", o?.settings.mode ?? "–"],
        ["Interval", o?.settings.interval_ms != null ? fmt.duration(o.settings.interval_ms) : "periodic checkpoints off"],
        ["Storage", o?.settings.storage ?? "engine default"],
        ["Retained", o?.settings.retained != null ? String(o.settings.retained) : "engine default"],
        ["Savepoint directory", o?.settings.savepoint_dir ?? "none configured (give one per savepoint)"],
      ],
      { class: "kv" },
    ),
  );
}

/** A live TaskManager's resident memory as its last heartbeat reported it. @param {string} id */
function memoryOf(id) {
  const details = data.taskManagerDetails.get(id);
  const bytes = details?.memory_rss_bytes;
  return bytes && details?.state === "REGISTERED" ? fmt.bytes(bytes) : "–";
}

function taskManagersPage() {
  const list = data.taskManagers;
  const tms = list?.task_managers ?? [];
  const now = Date.now();
  return h(
    "section",
    { "data-page": "taskmanagers" },
    h("h1", {}, "TaskManagers"),
    h(
      "div",
      { class: "cards" },
      card("TaskManagers", String(tms.filter((t) => t.state === "REGISTERED").length), "taskmanagers-registered", `${tms.length} known`),
      card("Slots available", String(list?.slots_available ?? "–"), "slots-available"),
      card("Subtasks run in", list?.subtasks_run_in ?? "–", "subtasks-run-in"),
      card("Heartbeat timeout", list ? fmt.duration(list.heartbeat_timeout_ms) : "–", "heartbeat-timeout"),
    ),
    tms.length
      ? table(
          ["ID", "State", "Slots", "Heartbeat", "Memory (RSS)", "Subtasks", "Data address", "Version", "Registered"],
          tms.map((t) => [
            h("a", { href: `#/taskmanagers`, "data-taskmanager": t.id, onclick: (/** @type {Event} */ e) => { e.preventDefault(); document.getElementById(`tm-${t.id}`)?.scrollIntoView(); } }, t.id),
            badge(t.state),
            `${t.slots_offered}/${t.slots}`,
            fmt.ago(t.last_heartbeat_ms, now),
            h("span", { "data-memory": t.id }, memoryOf(t.id)),
            String(data.taskManagerDetails.get(t.id)?.subtasks.length ?? "–"),
            t.data_address,
            t.version,
            fmt.time(t.registered_at_ms),
          ]),
          { class: "taskmanagers" },
        )
      : h("p", { class: "muted" }, "No TaskManager registered: subtasks run inside the JobManager."),
    ...tms.map((t) => {
      const d = data.taskManagerDetails.get(t.id);
      return h(
        "div",
        { id: `tm-${t.id}`, class: "tm-detail" },
        h("h2", {}, `${t.id} `, badge(t.state)),
        d && d.subtasks.length
          ? table(
              ["Vertex", "Subtask", "Records in", "Records out", "Busy ms", "Backpressured ms", "Input watermark"],
              d.subtasks.map((s) => [
                s.vertex_name,
                String(s.metrics.subtask + 1),
                fmt.count(s.metrics.records_in),
                fmt.count(s.metrics.records_out),
                fmt.count(s.metrics.busy_ms),
                fmt.count(s.metrics.backpressured_ms),
                fmt.watermark(s.metrics.input_watermark),
              ]),
            )
          : h("p", { class: "muted" }, t.state === "LOST" ? "Lost: its subtasks were restarted elsewhere." : "Runs no subtask of the current attempt."),
      );
    }),
  );
}

function exceptionsPage() {
  const ex = data.exceptions;
  const root = ex?.root_cause;
  const where = (/** @type {import("./types").JobException} */ e) =>
    e.operator ? `${e.operator}${e.subtask !== null ? ` (subtask ${e.subtask + 1})` : ""}` : "–";
  return h(
    "section",
    { "data-page": "exceptions" },
    h("h1", {}, "Exceptions"),
    root
      ? h(
          "div",
          { class: "alert", role: "alert", "data-root-cause": "" },
          h("h2", {}, "Root cause"),
          h("p", {}, `${fmt.time(root.timestamp_ms)} · ${where(root)}`),
          h("pre", {}, root.message),
        )
      : h("p", { class: "muted", "data-root-cause": "none" }, data.job?.state === "FAILED" ? "" : "The job has not failed."),
    h("h2", {}, "History"),
    ex && ex.history.length
      ? table(
          ["Time", "Attempt", "Location", "Outcome", "Exception"],
          ex.history.map((e) => [
            fmt.time(e.timestamp_ms),
            String(e.attempt + 1),
            where(e),
            e.terminal ? "job failed" : "restarted",
            h("pre", { class: "exception" }, e.message),
          ]),
          { class: "exceptions" },
        )
      : h("p", { class: "muted", "data-empty": "exceptions" }, "No failure so far."),
  );
}

// ----- shell -----

function render() {
  const main = document.getElementById("main");
  const status = document.getElementById("status");
  const title = document.getElementById("job-title");
  if (!main || !status || !title) return;
  const { page } = route();
  for (const a of document.querySelectorAll("nav a")) {
    a.setAttribute("aria-current", a.getAttribute("data-page") === page ? "page" : "false");
  }
  status.textContent = data.signIn
    ? "Sign in to see the job"
    : data.error
      ? data.error
      : data.updatedAt
        ? `Updated ${new Date(data.updatedAt).toLocaleTimeString()}`
        : "Loading…";
  status.className = data.error ? "status error" : "status";
  const signOut = document.getElementById("sign-out");
  if (signOut) signOut.hidden = auth.token() === null;
  const job = data.job;
  title.replaceChildren(...(job ? [job.name, " ", badge(job.state)] : ["Fjord"]));
  document.title = job ? `${job.name} · ${job.state} · Fjord` : "Fjord";
  if (data.signIn) {
    showSignIn(main, data.signIn);
    return;
  }
  if (!job) {
    main.replaceChildren(h("p", { class: "muted" }, data.error ?? "Loading…"));
    return;
  }
  const pages = { overview: overviewPage, graph: graphPage, checkpoints: checkpointsPage, taskmanagers: taskManagersPage, exceptions: exceptionsPage };
  const scroll = window.scrollY;
  const focused = document.activeElement?.getAttribute("data-vertex-id");
  main.replaceChildren(pages[/** @type {keyof typeof pages} */ (page)]());
  main.setAttribute("data-ready", page);
  // Rates and shares are measured once two samples of the current execution exist.
  main.setAttribute("data-measured", String(baseline() !== null));
  window.scrollTo(0, scroll);
  if (focused) {
    const again = main.querySelector(`[data-vertex-id="${focused}"]`);
    if (again instanceof SVGElement) again.focus();
  }
}

/**
 * Shows the sign-in form in `main`; a form already shown keeps what was typed into it and
 * only gets the new message.
 * @param {HTMLElement} main
 * @param {{ refused: boolean, message: string }} state
 */
function showSignIn(main, state) {
  const text = state.refused ? `The JobManager refused this token: ${state.message}` : "";
  const shown = main.querySelector('[data-page="login"] [data-login-message]');
  if (shown) {
    shown.textContent = text;
    shown.setAttribute("data-login-message", state.refused ? "refused" : "");
    return;
  }
  const input = h("input", {
    type: "password",
    name: "token",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "login-message",
  });
  /** @param {Event} e */
  const submit = (e) => {
    // Never submitted as a form (no navigation, nothing in a URL): the token goes to
    // sessionStorage and from there into the API calls' headers.
    e.preventDefault();
    const value = input instanceof HTMLInputElement ? input.value.trim() : "";
    if (!value) return;
    auth.signIn(value);
    data.signIn = null;
    main.replaceChildren(h("p", { class: "muted" }, "Checking the token…"));
    void poll();
  };
  main.replaceChildren(
    h(
      "form",
      { class: "login", "data-page": "login", onsubmit: submit },
      h("h1", {}, "Sign in"),
      h(
        "p",
        {},
        "This JobManager's REST API requires a token: the content of its security.rest.token-file " +
          "(for a StreamJob, the key token of the Secret <name>-rest-token). It is kept in this browser tab " +
          "only, until you sign out or close the tab, and sent with each request.",
      ),
      h("label", { class: "field" }, h("span", {}, "REST token"), input),
      h("p", { id: "login-message", class: "dialog-error", role: "alert", "data-login-message": state.refused ? "refused" : "" }, text),
      h("div", { class: "dialog-buttons" }, h("button", { type: "submit", "data-action": "sign-in" }, "Sign in")),
    ),
  );
  main.setAttribute("data-ready", "login");
  main.setAttribute("data-measured", "false");
  input.focus();
}

/** Forgets the token and shows the sign-in form. */
function signOut() {
  auth.signOut();
  needToken(new auth.AuthError("signed out", false));
  data.operations = [];
  render();
}

/** Polls forever: each poll waits for the previous to end, so a slow JobManager is not flooded. */
async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
}

document.getElementById("sign-out")?.addEventListener("click", signOut);
window.addEventListener("hashchange", () => {
  render();
  // A page with its own data (TaskManagers) fetches it at once.
  void poll();
});
loop();
