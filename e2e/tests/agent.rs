//! Node-agent behaviours the operator and fault-tolerance tests lean on: StatefulSet Pod names
//! through a headless Service, restarts per restartPolicy, SIGKILL after the grace period, and
//! Helm talking to the cluster.

use std::path::Path;
use std::time::{Duration, Instant};

use fjord_e2e::{ClusterOptions, TestCluster, poll_until};

const IMAGE: &str = "fjord/e2e-echo:test";

fn statefulset() -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: tm}}
spec:
  clusterIP: None
  selector: {{app: tm}}
  ports: [{{port: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: tm}}
spec:
  serviceName: tm
  replicas: 2
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: tm}}}}
  template:
    metadata: {{labels: {{app: tm}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: tm
        image: {IMAGE}
        args: [serve]
        env:
        - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
        - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
        readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: tm-client}}
spec:
  restartPolicy: OnFailure
  containers:
  - name: get
    image: {IMAGE}
    args: [get, "http://tm-1.tm:8080/", --expect, "hello from tm-1", --attempts, "100"]
"#
    )
}

const CRASHER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  restartPolicy: OnFailure
  containers:
  - {name: crash, image: busybox, command: [sh, -c, "exit 3"]}
"#;

const STUBBORN: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {name: ignore-term, image: busybox, command: [sh, -c, "trap '' TERM; echo started; sleep 600"]}
"#;

const COUNTER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: counter}
spec:
  restartPolicy: Never
  containers:
  - {name: count, image: busybox, command: [sh, -c, "for i in 1 2 3 4; do echo line-$i; sleep 0.5; done"]}
"#;

const EXEC_PROBED: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: probe-files}
data: {ready: "yes"}
---
apiVersion: v1
kind: Pod
metadata: {name: exec-probed}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: files, configMap: {name: probe-files}}]
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "sleep 600"]
    volumeMounts: [{name: files, mountPath: /etc/fjord-probe-check}]
    readinessProbe:
      exec: {command: [sh, -c, "test \"$(cat /etc/fjord-probe-check/ready)\" = yes"]}
      periodSeconds: 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_restarts_grace_periods_and_helm() -> anyhow::Result<()> {
    let cluster = TestCluster::start(
        ClusterOptions::new("agent")
            .nodes(2)
            .node_agent(env!("CARGO_BIN_EXE_fjord-node-agent"))
            .image(IMAGE, env!("CARGO_BIN_EXE_fjord-e2e-echo")),
    )?;
    let kubectl = |args: &[&str]| cluster.kubectl(args, None);
    let jsonpath =
        |pod: &str, path: &str| kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]);
    let slow = Duration::from_secs(90);
    let tick = Duration::from_millis(250);

    // StatefulSet Pods answer on <pod>.<headless service>.
    cluster.kubectl(&["apply", "-f", "-"], Some(&statefulset()))?;
    kubectl(&["rollout", "status", "statefulset/tm", "--timeout=120s"])?;
    poll_until("tm-client to succeed", slow, tick, || async {
        (jsonpath("tm-client", "{.status.phase}").ok()? == "Succeeded").then_some(())
    })
    .await?;

    // A failing container restarts with back-off and reports its last exit.
    cluster.kubectl(&["apply", "-f", "-"], Some(CRASHER))?;
    poll_until("crasher to restart twice", slow, tick, || async {
        let count: i32 = jsonpath("crasher", "{.status.containerStatuses[0].restartCount}")
            .ok()?
            .parse()
            .ok()?;
        (count >= 2).then_some(())
    })
    .await?;
    let last = jsonpath(
        "crasher",
        "{.status.containerStatuses[0].lastState.terminated.exitCode}",
    )?;
    assert_eq!(last, "3");
    assert_eq!(jsonpath("crasher", "{.status.phase}")?, "Running");

    // A process that ignores SIGTERM is SIGKILLed after the grace period, then the Pod is gone.
    cluster.kubectl(&["apply", "-f", "-"], Some(STUBBORN))?;
    let pid: u32 = poll_until("stubborn to run", slow, tick, || async {
        let id = jsonpath("stubborn", "{.status.containerStatuses[0].containerID}").ok()?;
        let log = std::fs::read_to_string(
            cluster
                .run_dir()
                .join("agent/logs/default_stubborn_ignore-term.log"),
        )
        .ok()?;
        (log.contains("started")).then_some(())?;
        id.strip_prefix("fjord-node-agent://")?.parse().ok()
    })
    .await?;
    let t0 = Instant::now();
    kubectl(&["delete", "pod", "stubborn", "--wait=false"])?;
    poll_until(
        "stubborn's process to end",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async { (!Path::new(&format!("/proc/{pid}")).exists()).then_some(()) },
    )
    .await?;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "SIGTERM was not ignored? process ended after {took:?}"
    );
    poll_until(
        "stubborn to be deleted",
        Duration::from_secs(20),
        tick,
        || async { kubectl(&["get", "pod", "stubborn"]).is_err().then_some(()) },
    )
    .await?;

    // kubectl logs -f streams while the container runs and ends when it has stopped.
    cluster.kubectl(&["apply", "-f", "-"], Some(COUNTER))?;
    poll_until("counter to run", slow, tick, || async {
        let phase = jsonpath("counter", "{.status.phase}").ok()?;
        (phase == "Running" || phase == "Succeeded").then_some(())
    })
    .await?;
    let followed = std::process::Command::new("timeout")
        .args([
            "60",
            cluster.setting("FJORD_KUBECTL")?,
            "logs",
            "-f",
            "counter",
        ])
        .env("KUBECONFIG", cluster.kubeconfig())
        .output()?;
    assert!(
        followed.status.success(),
        "kubectl logs -f did not end: {followed:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout),
        "line-1\nline-2\nline-3\nline-4\n"
    );

    // An exec probe sees the container's mounts (it runs in the same kind of mount namespace).
    cluster.kubectl(&["apply", "-f", "-"], Some(EXEC_PROBED))?;
    poll_until("exec-probed to become Ready", slow, tick, || async {
        let ready = jsonpath(
            "exec-probed",
            r#"{.status.conditions[?(@.type=="Ready")].status}"#,
        )
        .ok()?;
        (ready == "True").then_some(())
    })
    .await?;
    kubectl(&["delete", "pod", "exec-probed", "--wait=false"])?;

    // Helm installs into the cluster.
    let chart = cluster.run_dir().join("chart");
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: \">=1.35.0-0\"\n",
    )?;
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-cm}\ndata: {k: {{ .Capabilities.KubeVersion.Version | quote }}}\n",
    )?;
    let chart = chart.to_string_lossy().to_string();
    cluster.helm(&["lint", &chart])?;
    cluster.helm(&["install", "probe", &chart, "--wait", "--timeout", "60s"])?;
    assert_eq!(
        kubectl(&["get", "configmap", "probe-cm", "-o", "jsonpath={.data.k}"])?,
        "v1.35.4"
    );
    cluster.helm(&["uninstall", "probe", "--wait"])?;

    cluster.stop()?;
    Ok(())
}
