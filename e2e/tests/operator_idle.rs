//! Benchmark: what idle StreamJobs cost. Creates `FJORD_BENCH_STREAMJOBS` (default 200)
//! suspended StreamJobs (`examples/streamjobs/counting-suspended.yaml` under other names) on a
//! test cluster with the operator from its chart, waits until every one is `Suspended`, then
//! measures over `FJORD_BENCH_IDLE_SECS` (default 60) seconds: reconcile passes and status writes
//! (the operator's `/metrics`), and the CPU time of the operator, kube-apiserver and etcd
//! (`/proc/<pid>/stat`). Then the reaction to a patch: the time from `kubectl patch` of one
//! StreamJob's spec to its `status.observedGeneration` showing the new generation, 20 times.
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

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use fjord_e2e::poll_until;
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
    // (a kube client in this process, polling every 5 ms), so no kubectl start-up is counted.
    let client = op.cluster.client().await?;
    let resource = kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("fjord.dev", "v1alpha1", "StreamJob"),
        "streamjobs",
    );
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client, "default", &resource);
    let mut samples = Vec::new();
    for k in 0..20usize {
        let name = format!("idle-{}", (k * 37) % n);
        let patch = serde_json::json!({"spec": {"savepoints": {"historyMaxCount": 2 + k % 5}}});
        let patched = Instant::now();
        let after = api
            .patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await?;
        let generation = after.metadata.generation;
        let mut seen = None;
        while patched.elapsed() < Duration::from_secs(30) {
            let sj = api.get(&name).await?;
            if sj.data["status"]["observedGeneration"].as_i64() == generation {
                seen = Some(patched.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(seen.with_context(|| format!("{name} never observed {generation:?}"))?);
    }
    samples.sort();
    eprintln!(
        "FIGURE reaction to a patch with {n} StreamJobs: p50 {} ms, p99 {} ms, max {} ms (20 patches through the API)",
        samples[samples.len() / 2].as_millis(),
        samples[samples.len() * 99 / 100].as_millis(),
        samples[samples.len() - 1].as_millis()
    );
    ensure!(
        reconciles < n as f64,
        "{reconciles} passes in {window:.0}s over {n} idle StreamJobs: idle objects are still re-checked"
    );
    op.cluster.stop()?;
    Ok(())
}
