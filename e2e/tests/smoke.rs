//! Smoke test of the whole infrastructure: a Deployment of a tiny project binary applied with
//! kubectl runs as local processes through the node agent, becomes Ready, is reachable through
//! its Service name (a ClusterIP Service whose port differs from the named target port) from
//! another Pod and through its ClusterIP from the test, and its processes are gone after deletion.

use std::path::Path;
use std::time::Duration;

use fjord_e2e::{ClusterOptions, TestCluster, poll_until};

const IMAGE: &str = "fjord/e2e-echo:test";

fn manifests() -> String {
    format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: echo-config}}
data: {{greeting: hello}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: echo}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: echo
        image: {IMAGE}
        args: [serve, --port, "8080"]
        ports: [{{name: http, containerPort: 8080}}]
        env:
        - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
        - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
        readinessProbe:
          httpGet: {{path: /ready, port: http}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec:
  selector: {{app: echo}}
  ports: [{{port: 9000, targetPort: http}}]
"#
    )
}

fn client_pod() -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: echo-client}}
spec:
  restartPolicy: Never
  volumes: [{{name: config, configMap: {{name: echo-config}}}}]
  containers:
  - name: short-name
    image: {IMAGE}
    args: [get, "http://echo:9000/", --expect, "hello from echo-"]
  - name: fqdn
    image: {IMAGE}
    args: [get, "http://echo.default.svc.cluster.local:9000/", --expect, "hello from echo-"]
  - name: in-cluster-client
    image: {IMAGE}
    args: [kube-check, --expect-user, "system:serviceaccount:default:default"]
  - name: config-and-token
    image: {IMAGE}
    command: [sh, -c]
    args:
    - test "$(cat /etc/echo/greeting)" = hello && test "$GREETING" = hello &&
      test -s /var/run/secrets/kubernetes.io/serviceaccount/token &&
      test "$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)" = default
    env: [{{name: GREETING, valueFrom: {{configMapKeyRef: {{name: echo-config, key: greeting}}}}}}]
    volumeMounts: [{{name: config, mountPath: /etc/echo}}]
"#
    )
}

fn pid_of(container_id: &str) -> Option<u32> {
    container_id
        .strip_prefix("fjord-node-agent://")?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_runs_as_processes_and_answers_on_its_service_name() -> anyhow::Result<()> {
    let cluster = TestCluster::start(
        ClusterOptions::new("smoke")
            .nodes(2)
            .node_agent(env!("CARGO_BIN_EXE_fjord-node-agent"))
            .image(IMAGE, env!("CARGO_BIN_EXE_fjord-e2e-echo")),
    )?;
    let kubectl = |args: &[&str]| cluster.kubectl(args, None);

    cluster.kubectl(&["apply", "-f", "-"], Some(&manifests()))?;
    kubectl(&["rollout", "status", "deployment/echo", "--timeout=120s"])?;

    // Both replicas Ready, each with its own address from this run's block, each a live process.
    let block = cluster
        .pod_ip_block()
        .expect("up.sh sets FJORD_POD_IP_BLOCK")
        .to_string();
    let out = kubectl(&[
        "get",
        "pods",
        "-l",
        "app=echo",
        "-o",
        r#"jsonpath={range .items[*]}{.status.podIP} {.status.containerStatuses[0].containerID} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
    ])?;
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    let mut pids = Vec::new();
    for row in &rows {
        assert!(
            row[0].starts_with(&format!("{block}.")),
            "pod IP {} outside {block}.0/24",
            row[0]
        );
        assert_eq!(row[2], "True", "{out}");
        let pid = pid_of(row[1]).unwrap_or_else(|| panic!("container id {} names no pid", row[1]));
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} of {row:?} is not running"
        );
        pids.push(pid);
    }
    assert_ne!(rows[0][0], rows[1][0], "pods share an address");

    // The ClusterIP answers from outside the Pods too (the agent's proxy listens on loopback).
    let cluster_ip = kubectl(&["get", "service", "echo", "-o", "jsonpath={.spec.clusterIP}"])?;
    let svc_block = cluster
        .setting("FJORD_SERVICE_CIDR")?
        .trim_end_matches("0/24")
        .to_string();
    assert!(
        cluster_ip.starts_with(&svc_block),
        "{cluster_ip} not in {svc_block}0/24"
    );
    let body = poll_until(
        "the ClusterIP to answer",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            use std::io::{Read as _, Write as _};
            let mut s = std::net::TcpStream::connect((cluster_ip.as_str(), 9000)).ok()?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            out.contains("hello from echo-").then_some(out)
        },
    )
    .await?;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");

    // Reach the Deployment through its Service name from inside another Pod.
    cluster.kubectl(&["apply", "-f", "-"], Some(&client_pod()))?;
    let phase = poll_until(
        "echo-client to finish",
        Duration::from_secs(90),
        Duration::from_millis(500),
        || async {
            let phase = kubectl(&[
                "get",
                "pod",
                "echo-client",
                "-o",
                "jsonpath={.status.phase}",
            ])
            .ok()?;
            matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
        },
    )
    .await?;
    if phase != "Succeeded" {
        let status = kubectl(&[
            "get",
            "pod",
            "echo-client",
            "-o",
            "jsonpath={.status.containerStatuses}",
        ])?;
        let logs = std::fs::read_dir(cluster.run_dir().join("agent/logs"))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("echo-client"))
            .map(|e| {
                format!(
                    "{}:\n{}",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        panic!("echo-client {phase}: {status}\n{logs}");
    }
    let answer = std::fs::read_to_string(
        cluster
            .run_dir()
            .join("agent/logs/default_echo-client_short-name.log"),
    )?;
    assert!(answer.contains("hello from echo-"), "{answer}");
    // The same output through the API server's log proxy (kubectl logs → the agent's kubelet API).
    let logs = kubectl(&["logs", "echo-client", "-c", "short-name"])?;
    assert_eq!(logs, answer);
    let served = kubectl(&["logs", "deployment/echo", "--tail=1"])?;
    assert!(served.starts_with("echo: listening on "), "{served}");

    // Delete: Pods go away through the graceful path and their processes end.
    kubectl(&[
        "delete",
        "deployment",
        "echo",
        "--wait=true",
        "--timeout=60s",
    ])?;
    poll_until(
        "echo pods to be deleted",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || async {
            let out = kubectl(&["get", "pods", "-l", "app=echo", "-o", "name"]).ok()?;
            out.trim().is_empty().then_some(())
        },
    )
    .await?;
    poll_until(
        "echo processes to exit",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            pids.iter()
                .all(|pid| !Path::new(&format!("/proc/{pid}")).exists())
                .then_some(())
        },
    )
    .await?;

    cluster.stop()?;
    Ok(())
}
