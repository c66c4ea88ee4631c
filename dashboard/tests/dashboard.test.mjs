// Browser tests of the Fjord dashboard: Playwright (playwright-core) driving Debian's Chromium
// against a real JobManager with TaskManagers running a real job. Started by
// e2e/tests/dashboard.rs, which starts the processes, injects the failure between the two
// phases and passes everything through the environment:
//
//   FJORD_DASHBOARD_URL             the JobManager's REST address (http://127.0.0.1:port/)
//   FJORD_DASHBOARD_PHASE           "running": pages, graph, live figures, savepoint;
//                                   "failover": after a TaskManager was killed: exceptions,
//                                   TaskManagers, rescale and cancel from the page;
//                                   "auth": a JobManager with a REST token: sign-in, a wrong
//                                   token refused, the right one, sign-out, a checkpoint in
//                                   flight and then failed, stop with a savepoint from the
//                                   page
//   FJORD_DASHBOARD_ARTIFACTS       directory for the screenshots
//   FJORD_DASHBOARD_SAVEPOINT_DIR   savepoint directory typed into the page (running)
//   FJORD_DASHBOARD_LOST_TM         ID of the TaskManager that was killed (failover)
//   FJORD_DASHBOARD_TOKEN           the JobManager's REST token (auth; also sent by `rest()`)
//   FJORD_DASHBOARD_TM_PIDS         `tm1=<pid>,tm2=<pid>,tm3=<pid>`: the script pauses
//                                   (SIGSTOP) one that runs no source subtask to hold a
//                                   checkpoint in flight, then kills it once it is lost (auth)
//   FJORD_CHROMIUM                  the browser (default /usr/bin/chromium)
//
// Every wait is bounded; nothing is asserted on timing.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const need = (/** @type {string} */ name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through \`cargo test -p fjord-e2e --test dashboard\``);
  return v;
};
const URL_BASE = need("FJORD_DASHBOARD_URL").replace(/\/?$/, "/");
const PHASE = need("FJORD_DASHBOARD_PHASE");
const ARTIFACTS = need("FJORD_DASHBOARD_ARTIFACTS");
mkdirSync(ARTIFACTS, { recursive: true });

/** The flags the machine notes give for headless Chromium as root on a closed network. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const PAGES = ["overview", "graph", "checkpoints", "taskmanagers", "exceptions"];
/** Bound on a page or figure showing up. */
const SHOW = 30_000;
/** Bound on an action (savepoint, rescale, cancel) ending. */
const ACTION = 120_000;

/** @type {import("playwright-core").Browser} */
let browser;
/** Console errors and page errors of every page, checked by the tests. @type {string[]} */
const errors = [];

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.FJORD_CHROMIUM || "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
});
after(async () => {
  await browser?.close();
});

/** A new page at `width`×`height` that records console errors. */
async function open(width = 1280, height = 800, colorScheme = /** @type {"light" | "dark"} */ ("light")) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme, isMobile: width < 600, hasTouch: width < 600 });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e.message}`));
  return page;
}

/**
 * Opens `page` of the dashboard and waits (bounded) until it rendered with data and, while
 * the job runs, with measured rates (so screenshots show figures, not dashes).
 */
async function show(page, name) {
  await page.goto(`${URL_BASE}#/${name}`);
  await page.waitForSelector(`main[data-ready="${name}"] [data-page="${name}"]`, { timeout: SHOW });
  const running = await page.$('#job-title [data-state="RUNNING"]');
  if (running) await page.waitForSelector('main[data-measured="true"]', { timeout: SHOW });
}

const TOKEN = process.env.FJORD_DASHBOARD_TOKEN;

/** GET `path` of the REST API (with the token when the JobManager needs one). @param {string} path */
async function rest(path) {
  const r = await fetch(new URL(path, URL_BASE), { headers: TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {} });
  assert.ok(r.ok, `GET ${path}: HTTP ${r.status}`);
  return r.json();
}

async function jobId() {
  const list = await rest("v1/jobs");
  assert.equal(list.jobs.length, 1, "one job");
  return list.jobs[0].id;
}

/** Screenshot into the artifacts directory. */
async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * Records every value `attribute` takes on elements matching `selector` from now on (the
 * page re-renders on every poll).
 */
async function watchAttribute(page, selector, attribute) {
  await page.evaluate(
    ([sel, attr]) => {
      const seen = (/** @type {any} */ (window).__seen = []);
      const note = () => {
        for (const el of document.querySelectorAll(sel)) {
          const v = el.getAttribute(attr);
          if (v && seen[seen.length - 1] !== v) seen.push(v);
        }
      };
      new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true });
    },
    [selector, attribute],
  );
}

/** Clicks an action button, fills the dialog's fields and confirms. */
async function runAction(page, action, fields = {}) {
  await page.click(`button[data-action="${action}"]`);
  await page.waitForSelector("dialog[open]", { timeout: SHOW });
  for (const [name, value] of Object.entries(fields)) {
    await page.fill(`dialog input[name="${name}"]`, value);
  }
  await page.click('dialog button[data-action="confirm"]');
  await page.waitForSelector("dialog[open]", { state: "detached", timeout: SHOW }).catch(() => {});
}

if (PHASE === "running") {
  test("every page renders at 1280×800, on a phone, and in dark mode, without errors", async () => {
    const page = await open();
    for (const name of PAGES) {
      await show(page, name);
      const heading = await page.textContent(`[data-page="${name}"] h1`);
      assert.ok(heading && heading.length > 0, `${name} has a heading`);
      await shot(page, `desktop-${name}`);
    }
    // A phone: nothing wider than the screen (the page scrolls vertically only).
    const phone = await open(390, 844);
    for (const name of ["overview", "graph", "checkpoints"]) {
      await show(phone, name);
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${name} is ${overflow}px wider than a phone's screen`);
      await shot(phone, `phone-${name}`);
    }
    // Dark mode follows the browser's preference.
    const dark = await open(1280, 800, "dark");
    await show(dark, "graph");
    const background = async (p) => p.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [light, night] = [await background(page), await background(dark)];
    assert.notEqual(light, night, "the dark theme changes the background");
    await shot(dark, "dark-graph");
    assert.deepEqual(errors, [], "no console or page errors");
  });

  test("the graph shows the job's vertices and edges, and a vertex opens its subtasks", async () => {
    const job = await rest(`v1/jobs/${await jobId()}`);
    const page = await open();
    await show(page, "graph");
    const names = await page.$$eval("svg.graph [data-vertex-id]", (els) => els.map((e) => e.getAttribute("data-vertex-name")));
    assert.deepEqual(names.sort(), job.vertices.map((v) => v.name).sort());
    const edges = await page.$$eval("svg.graph [data-edge]", (els) => els.map((e) => e.textContent));
    assert.deepEqual(
      edges.sort(),
      job.edges.map((e) => (e.side_output ? `${e.partitioner} [${e.side_output}]` : e.partitioner)).sort(),
    );
    const parallel = job.vertices.find((v) => v.parallelism > 1) ?? job.vertices[0];
    await page.click(`svg.graph [data-vertex-id="${parallel.id}"]`);
    await page.waitForSelector(`[data-subtasks-of="${parallel.id}"] tbody tr`, { timeout: SHOW });
    const rows = await page.$$(`[data-subtasks-of="${parallel.id}"] tbody tr`);
    assert.equal(rows.length, parallel.parallelism, "one row per subtask");
    await shot(page, "desktop-graph-vertex");
    assert.deepEqual(errors, []);
  });

  test("figures move while the job runs", async () => {
    const page = await open();
    await show(page, "graph");
    const source = "svg.graph [data-vertex-id]";
    const first = Number(await page.getAttribute(source, "data-records-out"));
    // The first vertex is a source: its records out grow with every poll while the job runs.
    await page.waitForFunction(
      ([sel, was]) => Number(document.querySelector(sel)?.getAttribute("data-records-out")) > was,
      [source, first],
      { timeout: SHOW },
    );
    // The overview's rate is measured (not "–") once two samples exist.
    await show(page, "overview");
    await page.waitForFunction(
      () => /\d/.test(document.querySelector('[data-figure="throughput"] .card-value')?.textContent ?? ""),
      undefined,
      { timeout: SHOW },
    );
    const uptime = await page.textContent('[data-figure="uptime"] .card-value');
    await page.waitForFunction((was) => document.querySelector('[data-figure="uptime"] .card-value')?.textContent !== was, uptime, {
      timeout: SHOW,
    });
    assert.deepEqual(errors, []);
  });

  test("a savepoint triggered from the page is shown in progress, then in the checkpoint history", async () => {
    const dir = need("FJORD_DASHBOARD_SAVEPOINT_DIR");
    const page = await open();
    await show(page, "overview");
    await watchAttribute(page, '[data-operation="savepoint"]', "data-operation-state");
    await runAction(page, "savepoint", { directory: dir });
    await page.waitForSelector('[data-operation="savepoint"][data-operation-state="COMPLETED"]', { timeout: ACTION });
    const states = await page.evaluate(() => /** @type {any} */ (window).__seen);
    assert.deepEqual(states, ["IN_PROGRESS", "COMPLETED"], "shown in progress until done");
    await shot(page, "desktop-overview-savepoint");
    // The REST API has it, and the Checkpoints page lists it.
    const history = await rest(`v1/jobs/${await jobId()}/checkpoints`);
    const savepoint = history.completed.find((c) => c.savepoint && c.path.startsWith(dir));
    assert.ok(savepoint, `a savepoint under ${dir} in ${JSON.stringify(history.completed.slice(0, 3))}`);
    await show(page, "checkpoints");
    await page.waitForSelector(`table.history tr:has([data-kind="savepoint"]):has-text("${savepoint.path}")`, { timeout: SHOW });
    await shot(page, "desktop-checkpoints-savepoint");
    assert.deepEqual(errors, []);
  });
} else if (PHASE === "failover") {
  const lost = need("FJORD_DASHBOARD_LOST_TM");

  test("a failure shows in Exceptions with its cause, and the job restarted", async () => {
    // What the JobManager recorded for the restart the lost TaskManager caused (the first
    // failure it noticed: the lost TaskManager, or its peers' tasks failing on the broken
    // connections to it).
    const recorded = await rest(`v1/jobs/${await jobId()}/exceptions`);
    const failure = recorded.history.find((e) => !e.terminal);
    assert.ok(failure, `a restart's failure in ${JSON.stringify(recorded)}`);
    assert.match(failure.message, /TaskManager/);
    const page = await open();
    await show(page, "exceptions");
    const row = page.locator("table.exceptions tbody tr").filter({ hasText: failure.message });
    await row.first().waitFor({ timeout: SHOW });
    assert.match((await row.first().textContent()) ?? "", /restarted/);
    await shot(page, "failover-exceptions");
    assert.deepEqual(errors, []);
  });

  test("TaskManagers shows the lost one, and the subtasks and memory of the live ones", async () => {
    const page = await open();
    await show(page, "taskmanagers");
    await page.waitForSelector(`table.taskmanagers tr:has([data-taskmanager="${lost}"]) [data-state="LOST"]`, { timeout: SHOW });
    const list = await rest("v1/taskmanagers");
    const live = list.task_managers.filter((t) => t.state === "REGISTERED");
    assert.ok(live.length > 0, "a live TaskManager");
    // Every live TaskManager that runs subtasks lists them (from its heartbeats).
    await page.waitForFunction(
      (ids) => ids.some((id) => (document.getElementById(`tm-${id}`)?.querySelectorAll("tbody tr").length ?? 0) > 0),
      live.map((t) => t.id),
      { timeout: SHOW },
    );
    // Their memory, as their heartbeats report it, matches the REST API's figure.
    for (const t of live) {
      const details = await rest(`v1/taskmanagers/${t.id}`);
      assert.ok(details.memory_rss_bytes > 0, `${t.id} reports its memory`);
      await page.waitForFunction((id) => /\d (KB|MB|GB)$/.test(document.querySelector(`[data-memory="${id}"]`)?.textContent ?? ""), t.id, {
        timeout: SHOW,
      });
    }
    await shot(page, "failover-taskmanagers");
    assert.deepEqual(errors, []);
  });

  test("rescale from the page: confirmed, in progress, then the graph runs at the new parallelism", async () => {
    const page = await open();
    await show(page, "overview");
    await watchAttribute(page, '[data-operation="rescale"]', "data-operation-state");
    await runAction(page, "rescale", { parallelism: "1" });
    await page.waitForSelector('[data-operation="rescale"][data-operation-state="COMPLETED"]', { timeout: ACTION });
    const states = await page.evaluate(() => /** @type {any} */ (window).__seen);
    assert.deepEqual(states, ["IN_PROGRESS", "COMPLETED"]);
    const job = await rest(`v1/jobs/${await jobId()}`);
    assert.ok(job.vertices.every((v) => v.parallelism === 1), "every vertex at parallelism 1");
    await show(page, "graph");
    await page.waitForFunction(
      () => [...document.querySelectorAll("table.vertices tbody tr td:nth-child(2)")].every((td) => td.textContent === "1"),
      undefined,
      { timeout: SHOW },
    );
    await shot(page, "failover-graph-rescaled");
    assert.deepEqual(errors, []);
  });

  test("cancel from the page: confirmed, then the job is CANCELED", async () => {
    const page = await open();
    await show(page, "overview");
    await runAction(page, "cancel");
    await page.waitForSelector('[data-operation="cancel"][data-operation-state="COMPLETED"]', { timeout: ACTION });
    await page.waitForSelector('#job-title [data-state="CANCELED"]', { timeout: SHOW });
    const job = await rest(`v1/jobs/${await jobId()}`);
    assert.equal(job.state, "CANCELED");
    await shot(page, "failover-overview-canceled");
    assert.deepEqual(errors, []);
  });
} else if (PHASE === "auth") {
  const token = need("FJORD_DASHBOARD_TOKEN");
  /** What the page keeps in sessionStorage (the token, while signed in). */
  const stored = (/** @type {import("playwright-core").Page} */ page) =>
    page.evaluate(() => Object.values(sessionStorage).join(" "));

  /** Console errors other than the 401s a page gets before it is signed in. */
  const unexpected = () => errors.filter((e) => !/status of 401/.test(e));

  /** Types `value` into the sign-in form and submits it. */
  async function signIn(page, value) {
    await page.fill('form[data-page="login"] input[name="token"]', value);
    await page.click('form[data-page="login"] button[data-action="sign-in"]');
  }

  test("without a token the page asks for one and shows nothing of the job", async () => {
    // The API is closed; the page's files are not.
    const closed = await fetch(new URL("v1/jobs", URL_BASE));
    assert.equal(closed.status, 401);
    for (const file of ["", "dashboard/app.js", "dashboard/auth.js", "dashboard/style.css"]) {
      const r = await fetch(new URL(file, URL_BASE));
      assert.equal(r.status, 200, `${file || "/"} is served without a token`);
    }
    const page = await open();
    await page.goto(`${URL_BASE}#/overview`);
    await page.waitForSelector('main[data-ready="login"] form[data-page="login"] input[type="password"]', { timeout: SHOW });
    assert.equal(await page.textContent("#job-title"), "Fjord", "no job name before signing in");
    assert.equal(await page.isHidden("#sign-out"), true);
    await shot(page, "auth-sign-in");
    // The browser logged the 401 of its first API call; nothing else.
    assert.deepEqual(unexpected(), []);
  });

  test("a wrong token is refused with a clear message and not kept", async () => {
    const page = await open();
    await page.goto(`${URL_BASE}#/overview`);
    await page.waitForSelector('form[data-page="login"]', { timeout: SHOW });
    await signIn(page, `${token}-wrong`);
    const message = await page.waitForSelector('[data-login-message="refused"]', { timeout: SHOW });
    const text = (await message.textContent()) ?? "";
    assert.match(text, /refused this token/);
    assert.match(text, /not valid for this JobManager/);
    assert.ok(!text.includes(token), "the message does not show the token");
    assert.equal(await stored(page), "", "a refused token is forgotten");
    assert.equal(await page.textContent("#job-title"), "Fjord");
    await shot(page, "auth-refused");
    assert.deepEqual(unexpected(), []);
  });

  test("the right token shows the job, stays for the tab, never in the URL, and signing out forgets it", async () => {
    const job = await rest(`v1/jobs/${await jobId()}`);
    const page = await open();
    await page.goto(`${URL_BASE}#/overview`);
    await page.waitForSelector('form[data-page="login"]', { timeout: SHOW });
    await signIn(page, token);
    await show(page, "overview");
    assert.match((await page.textContent("#job-title")) ?? "", new RegExp(job.name));
    assert.ok(!page.url().includes(token), "the token is not in the URL");
    assert.equal(await stored(page), token);
    await shot(page, "auth-overview");
    // Every page works with it, and a reload keeps the tab signed in.
    for (const name of PAGES) await show(page, name);
    await page.reload();
    await show(page, "exceptions");
    // Signing out forgets it and hides the job again.
    await page.click("#sign-out");
    await page.waitForSelector('form[data-page="login"]', { timeout: SHOW });
    assert.equal(await stored(page), "");
    assert.equal(await page.textContent("#job-title"), "Fjord");
    assert.deepEqual(unexpected(), []);
  });

  test("a checkpoint in flight shows its acknowledgements per vertex; when it fails, it is listed with the reason", async () => {
    // TaskManager ID → PID of the three TaskManagers (two run the job, one is spare).
    const pids = new Map(need("FJORD_DASHBOARD_TM_PIDS").split(",").map((kv) => /** @type {[string, number]} */ ([kv.split("=")[0], Number(kv.split("=")[1])])));
    const id = await jobId();
    const job = await rest(`v1/jobs/${id}`);
    // Pause a TaskManager that runs subtasks but not the source's: its subtasks cannot
    // acknowledge the next checkpoint. (The source's may not either: backpressure from the
    // paused consumers soon blocks it, so which vertices acknowledge is not asserted.)
    const sourceVertex = job.vertices[0].id;
    /** @type {string | undefined} */
    let paused;
    for (const tm of (await rest("v1/taskmanagers")).task_managers) {
      const details = await rest(`v1/taskmanagers/${tm.id}`);
      const vertices = details.subtasks.map((/** @type {any} */ s) => s.vertex);
      if (vertices.length > 0 && !vertices.includes(sourceVertex)) paused = tm.id;
    }
    assert.ok(paused && pids.has(paused), `a TaskManager without the source among ${[...pids.keys()]}`);
    const pid = /** @type {number} */ (pids.get(paused));
    const before = (await rest(`v1/jobs/${id}/checkpoints`)).failed_history.length;

    const page = await open();
    await page.goto(`${URL_BASE}?poll=300#/checkpoints`);
    await page.waitForSelector('form[data-page="login"]', { timeout: SHOW });
    await signIn(page, token);
    await show(page, "checkpoints");
    process.kill(pid, "SIGSTOP");
    try {
      // Held: in flight longer than a checkpoint takes here (milliseconds), with a vertex
      // still waiting.
      await page.waitForFunction(
        (vertices) => {
          const rows = [...document.querySelectorAll("table.in-flight tbody tr")];
          return rows.some((row) => {
            const acks = [...row.querySelectorAll("li[data-acks]")];
            const n = (/** @type {Element} */ li, /** @type {string} */ a) => Number(li.getAttribute(a));
            return acks.length === vertices && acks.some((li) => n(li, "data-acknowledged") < n(li, "data-parallelism"));
          });
        },
        job.vertices.length,
        { timeout: SHOW },
      );
      // The held one: in flight for seconds (a checkpoint that was nearly done when the
      // TaskManager was paused may still complete).
      /** @type {any} */
      let held;
      for (const deadline = Date.now() + SHOW; !held; ) {
        held = (await rest(`v1/jobs/${id}/checkpoints`)).in_progress.find(
          (/** @type {any} */ c) => Date.now() - c.triggered_at_ms > 2000 && c.vertices.some((/** @type {any} */ v) => v.acknowledged < v.parallelism),
        );
        assert.ok(held || Date.now() < deadline, "the REST API lists a checkpoint held for 2 s");
        if (!held) await new Promise((r) => setTimeout(r, 200));
      }
      await page.waitForSelector(`table.in-flight [data-in-flight="${held.id}"]`, { timeout: SHOW });
      assert.deepEqual(
        held.vertices.map((/** @type {any} */ v) => [v.vertex, v.parallelism]),
        job.vertices.map((/** @type {any} */ v) => [v.id, v.parallelism]),
        "one entry per vertex, with its parallelism",
      );
      await shot(page, "auth-checkpoints-in-flight");
      // The paused TaskManager misses its heartbeats: the JobManager declares it lost and
      // restarts the job on the spare one, and the held checkpoint fails with the attempt.
      const row = page.locator(`table.failed-history tr:has([data-failed-checkpoint="${held.id}"])`);
      await row.waitFor({ timeout: ACTION });
      const failed = (await rest(`v1/jobs/${id}/checkpoints`)).failed_history;
      assert.ok(failed.length > before);
      const record = failed.find((/** @type {any} */ c) => c.id === held.id);
      assert.ok(record && record.reason.length > 0 && record.failed_at_ms >= record.triggered_at_ms, JSON.stringify(failed));
      assert.ok(((await row.textContent()) ?? "").includes(record.reason), "the row shows the reason");
      await page.waitForSelector('[data-empty="in-flight"]', { timeout: ACTION });
      await shot(page, "auth-checkpoints-failed");
    } finally {
      // Lost for good: it must not come back with the old attempt's tasks.
      process.kill(pid, "SIGKILL");
    }
    // The job runs again (on the other and the spare TaskManager) before it is stopped below.
    const deadline = Date.now() + ACTION;
    for (;;) {
      const now = await rest(`v1/jobs/${id}`);
      if (now.state === "RUNNING" && now.restarts >= 1 && now.vertices.some((/** @type {any} */ v) => v.records_out > 0)) break;
      assert.ok(Date.now() < deadline, `the job did not run again: ${JSON.stringify({ state: now.state, restarts: now.restarts })}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(unexpected(), []);
  });

  test("stop with a savepoint from the page: confirmed, in progress, the job FINISHED and the savepoint in the history", async () => {
    const dir = need("FJORD_DASHBOARD_SAVEPOINT_DIR");
    const page = await open();
    await page.goto(`${URL_BASE}#/overview`);
    await page.waitForSelector('form[data-page="login"]', { timeout: SHOW });
    await signIn(page, token);
    await show(page, "overview");
    await watchAttribute(page, '[data-operation="stop"]', "data-operation-state");
    await runAction(page, "stop", { directory: dir });
    await page.waitForSelector('[data-operation="stop"][data-operation-state="COMPLETED"]', { timeout: ACTION });
    const states = await page.evaluate(() => /** @type {any} */ (window).__seen);
    assert.deepEqual(states, ["IN_PROGRESS", "COMPLETED"], "shown in progress until done");
    await page.waitForSelector('#job-title [data-state="FINISHED"]', { timeout: SHOW });
    const history = await rest(`v1/jobs/${await jobId()}/checkpoints`);
    const savepoint = history.completed.find((c) => c.savepoint && c.path.startsWith(dir));
    assert.ok(savepoint, `the stop's savepoint under ${dir} in ${JSON.stringify(history.completed.slice(0, 3))}`);
    await shot(page, "auth-overview-stopped");
    await show(page, "checkpoints");
    await page.waitForSelector(`table.history tr:has([data-kind="savepoint"]):has-text("${savepoint.path}")`, { timeout: SHOW });
    await shot(page, "auth-checkpoints-stopped");
    assert.deepEqual(unexpected(), []);
  });
} else {
  throw new Error(`unknown FJORD_DASHBOARD_PHASE ${PHASE}: "running", "failover" or "auth"`);
}
