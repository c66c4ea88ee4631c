//! Benchmark: what idle StreamJobs cost. Creates `FJORD_BENCH_STREAMJOBS` (default 200)
//! suspended StreamJobs (`examples/streamjobs/counting-suspended.yaml` under other names) on a
//! test cluster with the operator from its chart, waits until every one is `Suspended`, then
//! measures over `FJORD_BENCH_IDLE_SECS` (default 60) seconds: reconcile passes and status writes
//! (the operator's `/metrics`), and the CPU time of the operator, kube-apiserver and etcd
//! (`/proc/<pid>/stat`). Then the reaction to a patch: the time from `kubectl patch` of one
//! StreamJob's spec to its `status.observedGeneration` showing the new generation, seen on a
//! watch, `FJORD_BENCH_PATCHES` times (default 100), with the operator's own part of it (the
//! `observed_ms` / `written_ms` of its log's `reconciled` lines).
//!
//! ```sh
//! cargo build -p fjord-operator --bins && cargo build -p fjord-worker --features s3 --bins
//! FJORD_BENCH_STREAMJOBS=1000 cargo test -p fjord-e2e --test operator_idle -- --ignored --nocapture
//! ```
//!
//! Figures go to BENCHMARKS.md by hand (machine, command, date). The one assertion is not a
//! timing: idle suspended objects are not re-checked, so the idle window sees fewer passes
//! than there are objects.

mod operator_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use fjord_e2e::poll_until;
use futures::StreamExt as _;
use k8s_openapi::jiff::{self, Timestamp};
use operator_support::{OPERATOR_NS, OperatorCluster, RELEASE, secs};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// user + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').context("stat format")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line: 12 and 13 after the name.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn pid_file(op: &OperatorCluster, name: &str) -> anyhow::Result<u32> {
    let path = op.cluster.run_dir().join(format!("pids/{name}.pid"));
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .parse()?)
}

fn operator_pid(op: &OperatorCluster) -> anyhow::Result<u32> {
    let id = op.kubectl(&[
        "get",
        "pods",
        "-n",
        OPERATOR_NS,
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
        "-o",
        "jsonpath={.items[0].status.containerStatuses[0].containerID}",
    ])?;
    id.strip_prefix("fjord-node-agent://")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("container id {id:?} names no pid"))
}

/// A counter of the operator's `/metrics`.
fn metric(op: &OperatorCluster, name: &str) -> anyhow::Result<f64> {
    let ip = op.kubectl(&[
        "get",
        "pods",
        "-n",
        OPERATOR_NS,
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ])?;
    let out = std::process::Command::new("curl")
        .args(["-fsS", &format!("http://{}:8080/metrics", ip.trim())])
        .output()?;
    ensure!(out.status.success(), "curl /metrics failed");
    let text = String::from_utf8(out.stdout)?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .context(format!("{name} not in /metrics"))?
        .trim()
        .parse()
        .context("a number")
}

fn suspended_count(op: &OperatorCluster) -> usize {
    op.kubectl(&[
        "get",
        "streamjobs",
        "-o",
        "jsonpath={range .items[*]}{.status.lifecycleState}{\"\\n\"}{end}",
    ])
    .map(|out| out.lines().filter(|l| *l == "Suspended").count())
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p fjord-e2e --test operator_idle -- --ignored --nocapture"]
async fn idle_suspended_streamjobs() -> anyhow::Result<()> {
    let n = env_or("FJORD_BENCH_STREAMJOBS", 200) as usize;
    let idle = Duration::from_secs(env_or("FJORD_BENCH_IDLE_SECS", 60));
    let op = OperatorCluster::start("operator-idle")?;
    let template = op.example("counting-suspended.yaml")?;
    ensure!(template.contains("  name: counting\nspec:"), "template");
    let created = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let docs: Vec<String> = chunk
            .iter()
            .map(|i| {
                template.replace(
                    "  name: counting\nspec:",
                    &format!("  name: idle-{i}\nspec:"),
                )
            })
            .collect();
        op.apply(&docs.join("\n---\n"))?;
    }
    poll_until(
        &format!("{n} StreamJobs Suspended"),
        Duration::from_secs(600),
        Duration::from_secs(1),
        || async { (suspended_count(&op) == n).then_some(()) },
    )
    .await?;
    eprintln!(
        "FIGURE {n} StreamJobs created and Suspended in {:.1}s",
        secs(created)
    );
    // Let the create burst settle (Events, the last writes) before measuring.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let pids = [
        ("operator", operator_pid(&op)?),
        ("kube-apiserver", pid_file(&op, "kube-apiserver")?),
        ("etcd", pid_file(&op, "etcd")?),
    ];
    let cpu0: Vec<f64> = pids
        .iter()
        .map(|(_, p)| cpu_seconds(*p))
        .collect::<anyhow::Result<_>>()?;
    let reconciles0 = metric(&op, "fjord_operator_reconciles_total")?;
    let writes0 = metric(&op, "fjord_operator_status_writes_total")?;
    let t0 = Instant::now();
    tokio::time::sleep(idle).await;
    let window = t0.elapsed().as_secs_f64();
    let reconciles = metric(&op, "fjord_operator_reconciles_total")? - reconciles0;
    let writes = metric(&op, "fjord_operator_status_writes_total")? - writes0;
    eprintln!(
        "FIGURE idle {n} suspended StreamJobs over {window:.0}s: {reconciles} reconciles ({:.3}/s), {writes} status writes",
        reconciles / window
    );
    for ((name, pid), before) in pids.iter().zip(&cpu0) {
        let used = cpu_seconds(*pid)? - before;
        eprintln!(
            "FIGURE idle {n}: {name} CPU {:.2}% of a core",
            100.0 * used / window
        );
    }

    // Reaction to a patch: spec change -> status.observedGeneration, through the API directly
    // (a kube client in this process), seen on one watch of all StreamJobs opened before the
    // first patch, so no polling load and no kubectl start-up is counted. Patches are spread
    // over the objects, one at a time, 100 ms apart.
    let samples_wanted = env_or("FJORD_BENCH_PATCHES", 100) as usize;
    let client = op.cluster.client().await?;
    let resource = kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("fjord.dev", "v1alpha1", "StreamJob"),
        "streamjobs",
    );
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client, "default", &resource);
    let seen = Arc::new(Mutex::new(HashMap::<(String, i64), Instant>::new()));
    let watch = tokio::spawn(observe_generations(api.clone(), seen.clone()));
    // The watch is open once it reports the objects it starts from.
    poll_until(
        "the StreamJob watch to start",
        Duration::from_secs(60),
        Duration::from_millis(10),
        || async { (!seen.lock().unwrap().is_empty()).then_some(()) },
    )
    .await?;
    let mut samples = Vec::new();
    let mut patched_names = Vec::new();
    // Per patch: the name, when it was sent (wall clock, to place the operator's log lines),
    // the PATCH call's own time and the whole reaction.
    let mut trace: Vec<(String, Timestamp, Duration, Duration)> = Vec::new();
    for k in 0..samples_wanted {
        let name = format!("idle-{}", (k * 37) % n);
        let patch = serde_json::json!({"spec": {"savepoints": {"historyMaxCount": 2 + k % 5}}});
        let patched = Instant::now();
        let sent = Timestamp::now();
        let after = api
            .patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await?;
        let patch_call = patched.elapsed();
        let generation = after.metadata.generation.context("a generation")?;
        let key = (name.clone(), generation);
        let mut at = None;
        while patched.elapsed() < Duration::from_secs(30) {
            if let Some(t) = seen.lock().unwrap().get(&key) {
                at = Some(t.saturating_duration_since(patched));
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let at = at.with_context(|| format!("{name} never observed {generation}"))?;
        samples.push(at);
        trace.push((name.clone(), sent, patch_call, at));
        patched_names.push(name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watch.abort();
    samples.sort();
    let pct = |v: &[Duration], p: usize| v[(v.len() * p / 100).min(v.len() - 1)].as_millis();
    eprintln!(
        "FIGURE reaction to a patch with {n} StreamJobs: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} patches through the API, seen on a watch)",
        pct(&samples, 50),
        pct(&samples, 90),
        pct(&samples, 99),
        samples[samples.len() - 1].as_millis(),
        samples.len()
    );
    // Where the time went: the operator logs, per pass that changed something, how long it
    // took to observe (its API reads) and to write the status. The rest of a reaction is the
    // watch's delivery to the operator and its queue.
    let log = op.kubectl(&[
        "logs",
        "-n",
        OPERATOR_NS,
        &format!("deployment/{RELEASE}"),
        "--tail=-1",
    ])?;
    let mut observed_ms = Vec::new();
    let mut written_ms = Vec::new();
    // Per patch: (reaction, PATCH call, patch sent -> pass started, pass, pass logged -> seen).
    let mut split: Vec<(Duration, Duration, i64, u64, i64)> = Vec::new();
    for (name, sent, patch_call, reaction) in &trace {
        let alt = format!("default/{name} ");
        if let Some(line) = log
            .lines()
            .rev()
            .find(|l| l.contains("reconciled") && l.contains(&alt))
        {
            let field = |f: &str| -> Option<u64> {
                let rest = &line[line.find(&format!("{f}="))? + f.len() + 1..];
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            };
            if let (Some(o), Some(w)) = (field("observed_ms"), field("written_ms")) {
                observed_ms.push(Duration::from_millis(o));
                written_ms.push(Duration::from_millis(w));
                // The log line's own timestamp (same machine, same clock) ends the pass.
                if let Some(logged) = line
                    .split_whitespace()
                    .next()
                    .and_then(|t| t.parse::<Timestamp>().ok())
                {
                    let logged_ms = (logged - *sent)
                        .total(jiff::Unit::Millisecond)
                        .unwrap_or(0.0) as i64;
                    let start_ms = logged_ms - w as i64;
                    split.push((
                        *reaction,
                        *patch_call,
                        start_ms,
                        w,
                        reaction.as_millis() as i64 - logged_ms,
                    ));
                }
            }
        }
    }
    split.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (reaction, patch_call, start_ms, pass_ms, after_ms) in split.iter().take(3) {
        eprintln!(
            "FIGURE slow patch: reaction {} ms = patch sent -> operator pass started {start_ms} ms \
             (of which the PATCH call {} ms) + pass {pass_ms} ms + pass logged -> status seen on \
             the watch {after_ms} ms",
            reaction.as_millis(),
            patch_call.as_millis()
        );
    }
    if !written_ms.is_empty() {
        observed_ms.sort();
        written_ms.sort();
        eprintln!(
            "FIGURE of which the operator's pass ({} passes from its log): observing p50 {} ms, p99 {} ms; observing + status write p50 {} ms, p99 {} ms",
            written_ms.len(),
            pct(&observed_ms, 50),
            pct(&observed_ms, 99),
            pct(&written_ms, 50),
            pct(&written_ms, 99)
        );
    }
    ensure!(
        reconciles < n as f64,
        "{reconciles} passes in {window:.0}s over {n} idle StreamJobs: idle objects are still re-checked"
    );
    op.cluster.stop()?;
    Ok(())
}

/// Records, for every StreamJob the watch shows, when each `status.observedGeneration` was
/// first seen (the watch's initial list counts too, so a non-empty map means it is open).
async fn observe_generations(
    api: kube::Api<kube::api::DynamicObject>,
    seen: Arc<Mutex<HashMap<(String, i64), Instant>>>,
) {
    use kube::runtime::watcher;
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = stream.next().await {
        let objects = match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => vec![o],
            _ => continue,
        };
        let now = Instant::now();
        for o in objects {
            let name = o.metadata.name.clone().unwrap_or_default();
            if let Some(g) = o.data["status"]["observedGeneration"].as_i64() {
                seen.lock().unwrap().entry((name, g)).or_insert(now);
            }
        }
    }
}
