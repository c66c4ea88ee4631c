use serde_json::json;

use super::*;

const GOOD: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: minio
stringData:
  AWS_ACCESS_KEY_ID: fjord
---
apiVersion: fjord.dev/v1alpha1
kind: StreamJob
metadata:
  name: counting
spec:
  image: fjord/examples:0.1.0
  job:
    name: counting
    args: ["--keys", "100"]
    parallelism: 2
    upgradeMode: savepoint
  taskManager:
    slots: 2
    replicas: 1
  checkpointing:
    interval: 10s
    storage: s3://fjord/checkpoints
  savepoints:
    periodicInterval: 1h
    historyMaxCount: 3
    onDelete: true
  storageCredentials:
    name: minio
  podTemplate:
    spec:
      nodeSelector:
        disk: ssd
"#;

fn good_json() -> serde_json::Value {
    let doc = GOOD.split("---").nth(1).unwrap();
    serde_yaml::from_str(doc).unwrap()
}

fn with(pointer: &str, value: serde_json::Value) -> String {
    let mut v = good_json();
    set(&mut v, pointer, value);
    serde_yaml::to_string(&v).unwrap()
}

fn set(root: &mut serde_json::Value, pointer: &str, value: serde_json::Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let mut cur = root;
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        if cur.get(part).is_none() {
            cur[part] = json!({});
        }
        cur = cur.get_mut(part).unwrap();
    }
    if value.is_null() {
        cur.as_object_mut().unwrap().remove(key);
    } else {
        cur[key] = value;
    }
}

#[test]
fn good_manifest_loads_with_defaults() {
    let job = load_stream_job(GOOD, "good.yaml").unwrap();
    assert_eq!(job.metadata.name.as_deref(), Some("counting"));
    assert_eq!(job.spec.job.parallelism, 2);
    assert_eq!(job.spec.job.state, DesiredJobState::Running);
    assert_eq!(job.spec.max_parallelism(), 128);
    assert_eq!(job.spec.task_manager_replicas(), 1);
    assert_eq!(
        job.spec.savepoint_directory().as_deref(),
        Some("s3://fjord/checkpoints/savepoints")
    );
    assert_eq!(
        job.spec.periodic_savepoint_interval(),
        Some(std::time::Duration::from_secs(3600))
    );
}

#[test]
fn defaults_fill_an_almost_empty_manifest() {
    let yaml = "apiVersion: fjord.dev/v1alpha1\nkind: StreamJob\nmetadata: {name: tiny}\nspec:\n  image: i\n  job: {name: j, upgradeMode: stateless}\n";
    let job = load_stream_job(yaml, "tiny.yaml").unwrap();
    assert_eq!(job.spec.job.parallelism, 1);
    assert_eq!(job.spec.task_manager_replicas(), 1);
    assert_eq!(job.spec.savepoint_directory(), None);
}

#[test]
fn the_default_upgrade_mode_is_savepoint_and_needs_somewhere_to_write() {
    let yaml = "apiVersion: fjord.dev/v1alpha1\nkind: StreamJob\nmetadata: {name: tiny}\nspec:\n  image: i\n  job: {name: j}\n";
    let err = load_stream_job(yaml, "tiny.yaml").unwrap_err().to_string();
    assert!(
        err.contains("spec.job.upgradeMode savepoint needs"),
        "{err}"
    );
}

struct Case {
    name: &'static str,
    pointer: &'static str,
    value: serde_json::Value,
    field: &'static str,
    /// Whether a CEL rule of the CRD (not only an OpenAPI bound) also catches it.
    cel: bool,
}

fn bad_cases() -> Vec<Case> {
    vec![
        Case {
            name: "zero parallelism",
            pointer: "/spec/job/parallelism",
            value: json!(0),
            field: "spec.job.parallelism",
            cel: false,
        },
        Case {
            name: "max parallelism below parallelism",
            pointer: "/spec/job/maxParallelism",
            value: json!(1),
            field: "spec.job.parallelism",
            cel: true,
        },
        Case {
            name: "parallelism above the default max parallelism",
            pointer: "/spec/job/parallelism",
            value: json!(1000),
            field: "spec.job.parallelism",
            cel: true,
        },
        Case {
            name: "parallelism above any max parallelism",
            pointer: "/spec/job/parallelism",
            value: json!(40000),
            field: "spec.job.parallelism",
            cel: false,
        },
        Case {
            name: "a secret key in the configuration",
            pointer: "/spec/configuration/s3.secret-key",
            value: json!("hunter2"),
            field: "spec.configuration",
            cel: true,
        },
        Case {
            name: "a password in the configuration",
            pointer: "/spec/configuration/kafka.sasl.PASSWORD",
            value: json!("hunter2"),
            field: "spec.configuration",
            cel: true,
        },
        Case {
            name: "memory storage with a stateful upgrade mode",
            pointer: "/spec/checkpointing/storage",
            value: json!("memory://cp"),
            field: "spec.checkpointing.storage",
            cel: true,
        },
        Case {
            name: "savepoint mode without any storage",
            pointer: "/spec/checkpointing",
            value: json!(null),
            field: "spec.job.upgradeMode",
            cel: true,
        },
        Case {
            name: "last-state without checkpoint storage",
            pointer: "/spec/checkpointing/storage",
            value: json!(null),
            field: "spec.job.upgradeMode",
            cel: true,
        },
        Case {
            name: "storage URL with an unknown scheme",
            pointer: "/spec/checkpointing/storage",
            value: json!("gs://bucket/checkpoints"),
            field: "spec.checkpointing.storage",
            cel: true,
        },
        Case {
            name: "savepoint directory without scheme",
            pointer: "/spec/savepoints/directory",
            value: json!("/tmp/savepoints"),
            field: "spec.savepoints.directory",
            cel: true,
        },
        Case {
            name: "initial savepoint path without scheme",
            pointer: "/spec/job/initialSavepointPath",
            value: json!("savepoint-1"),
            field: "spec.job.initialSavepointPath",
            cel: true,
        },
        Case {
            name: "zero checkpoint interval",
            pointer: "/spec/checkpointing/interval",
            value: json!("0s"),
            field: "spec.checkpointing.interval",
            cel: true,
        },
        Case {
            name: "periodic savepoints too often",
            pointer: "/spec/savepoints/periodicInterval",
            value: json!("30s"),
            field: "spec.savepoints.periodicInterval",
            cel: true,
        },
        Case {
            name: "too few task managers for the parallelism",
            pointer: "/spec/job/parallelism",
            value: json!(3),
            field: "spec.taskManager.replicas",
            cel: true,
        },
        Case {
            name: "two job managers",
            pointer: "/spec/jobManager/replicas",
            value: json!(2),
            field: "spec.jobManager.replicas",
            cel: true,
        },
        Case {
            name: "high availability with a renew deadline not below the lease",
            pointer: "/spec/jobManager/highAvailability",
            value: json!({"leaseDurationSeconds": 5, "renewDeadlineSeconds": 5, "retryPeriodSeconds": 1}),
            field: "spec.jobManager.highAvailability",
            cel: true,
        },
        Case {
            name: "high availability with a retry period not below the renew deadline",
            pointer: "/spec/jobManager/highAvailability",
            value: json!({"renewDeadlineSeconds": 3, "retryPeriodSeconds": 3}),
            field: "spec.jobManager.highAvailability",
            cel: true,
        },
        Case {
            name: "high availability without checkpoint storage",
            pointer: "/spec/jobManager/highAvailability",
            value: json!({}),
            field: "spec.jobManager.highAvailability",
            cel: true,
        },
        Case {
            name: "empty image",
            pointer: "/spec/image",
            value: json!(""),
            field: "spec.image",
            cel: false,
        },
        Case {
            name: "pod template that is not a pod template",
            pointer: "/spec/podTemplate/spec/containers",
            value: json!("not-a-list"),
            field: "spec.podTemplate",
            cel: false,
        },
        Case {
            name: "misspelt field",
            pointer: "/spec/job/paralelism",
            value: json!(4),
            field: "spec.job.paralelism",
            cel: false,
        },
        Case {
            name: "autoscaler maximum above the key groups",
            pointer: "/spec/autoscaler/maxParallelism",
            value: json!(200),
            field: "spec.autoscaler.maxParallelism",
            cel: true,
        },
        Case {
            name: "autoscaler minimum above the key groups",
            pointer: "/spec/autoscaler/minParallelism",
            value: json!(129),
            field: "spec.autoscaler.minParallelism",
            cel: true,
        },
        Case {
            name: "autoscaler minimum above its maximum",
            pointer: "/spec/autoscaler/minParallelism",
            value: json!(8),
            field: "spec.autoscaler.minParallelism",
            cel: true,
        },
        Case {
            name: "autoscaler target utilisation of zero",
            pointer: "/spec/autoscaler/targetUtilization",
            value: json!(0.0),
            field: "spec.autoscaler.targetUtilization",
            cel: false,
        },
        Case {
            name: "autoscaler boundary above one",
            pointer: "/spec/autoscaler/targetUtilizationBoundary",
            value: json!(1.5),
            field: "spec.autoscaler.targetUtilizationBoundary",
            cel: false,
        },
        Case {
            name: "autoscaler metrics window below a second",
            pointer: "/spec/autoscaler/metricsWindow",
            value: json!("500ms"),
            field: "spec.autoscaler.metricsWindow",
            cel: true,
        },
        Case {
            name: "autoscaler enabled with fewer slots than its maximum",
            pointer: "/spec/autoscaler/enabled",
            value: json!(true),
            field: "spec.taskManager.replicas",
            cel: true,
        },
        Case {
            name: "a SQL script beside a registered job",
            pointer: "/spec/job/sql",
            value: json!("INSERT INTO b SELECT * FROM a"),
            field: "spec.job.name",
            cel: true,
        },
        Case {
            name: "neither a registered job nor a SQL script",
            pointer: "/spec/job/name",
            value: json!(""),
            field: "spec.job.name",
            cel: true,
        },
        Case {
            name: "name too long for child objects",
            pointer: "/metadata/name",
            value: json!("a".repeat(51)),
            field: "metadata.name",
            cel: false,
        },
    ]
}

/// The good manifest with a case's change (and the companion change some cases need).
fn case_json(case: &Case) -> serde_json::Value {
    let mut v = good_json();
    set(&mut v, case.pointer, case.value.clone());
    match case.name {
        "last-state without checkpoint storage" => {
            set(&mut v, "/spec/job/upgradeMode", json!("last-state"));
            set(&mut v, "/spec/savepoints/directory", json!("s3://fjord/sp"));
        }
        "autoscaler minimum above its maximum" => {
            set(&mut v, "/spec/autoscaler/maxParallelism", json!(4));
        }
        "high availability without checkpoint storage" => {
            set(&mut v, "/spec/checkpointing/storage", json!("memory://cp"));
            set(&mut v, "/spec/job/upgradeMode", json!("stateless"));
            set(&mut v, "/spec/savepoints", json!(null));
        }
        _ => {}
    }
    v
}

#[test]
fn bad_manifests_are_rejected_naming_the_field() {
    for case in bad_cases() {
        let yaml = serde_yaml::to_string(&case_json(&case)).unwrap();
        let err = load_stream_job(&yaml, "bad.yaml").expect_err(case.name);
        let Error::Invalid { errors, .. } = &err else {
            panic!("{}: expected Invalid, got {err}", case.name)
        };
        assert!(
            errors.iter().any(|e| e.field == case.field),
            "{}: expected an error on {}, got {err}",
            case.name,
            case.field
        );
        assert!(err.to_string().contains(case.field), "{}", case.name);
    }
}

#[test]
fn cel_rules_of_the_crd_agree_with_the_rust_rules() {
    for case in bad_cases().into_iter().filter(|c| c.cel) {
        let v = case_json(&case);
        let job: StreamJob = serde_json::from_value(v).unwrap();
        let rust = validate_spec(&job.spec);
        let cel = validate_cel(&job);
        assert!(!rust.is_empty(), "{}: Rust rules accepted it", case.name);
        assert!(!cel.is_empty(), "{}: CEL rules accepted it", case.name);
        // Same words on a laptop and from the API server.
        let rust_messages: Vec<&str> = rust.iter().map(|e| e.message.as_str()).collect();
        assert!(
            cel.iter()
                .any(|c| rust_messages.contains(&c.message.as_str())),
            "{}: CEL said {:?}, Rust said {:?}",
            case.name,
            cel,
            rust
        );
    }
}

#[test]
fn an_autoscaler_loads_with_defaults_and_bounds() {
    let mut v = good_json();
    set(&mut v, "/spec/taskManager/replicas", json!(null));
    set(
        &mut v,
        "/spec/autoscaler",
        json!({"enabled": true, "maxParallelism": 8, "metricsWindow": "10s"}),
    );
    let job = load_stream_job(&serde_yaml::to_string(&v).unwrap(), "a.yaml").unwrap();
    let a = job.spec.enabled_autoscaler().unwrap();
    assert_eq!(a.target_utilization(), 0.7);
    assert_eq!(a.boundary(), 0.3);
    assert_eq!(a.metrics_window(), std::time::Duration::from_secs(10));
    assert_eq!(
        a.stabilization_interval(),
        std::time::Duration::from_secs(60)
    );
    assert_eq!(job.spec.autoscaler_bounds(), (1, 8));
    assert_eq!(validate_cel(&job), vec![]);
    // Without a maximum: the key groups; with fixed TaskManagers: their slots too.
    set(&mut v, "/spec/autoscaler/maxParallelism", json!(null));
    let job: StreamJob = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(job.spec.autoscaler_bounds(), (1, 128));
    set(&mut v, "/spec/autoscaler/enabled", json!(false));
    set(&mut v, "/spec/taskManager/replicas", json!(3));
    let job: StreamJob = serde_json::from_value(v).unwrap();
    assert_eq!(job.spec.autoscaler_bounds(), (1, 6));
    assert!(job.spec.enabled_autoscaler().is_none());
}

#[test]
fn standby_job_managers_with_high_availability_are_accepted() {
    let mut v = good_json();
    set(&mut v, "/spec/jobManager/replicas", json!(2));
    set(
        &mut v,
        "/spec/jobManager/highAvailability",
        json!({"leaseDurationSeconds": 6, "renewDeadlineSeconds": 4, "retryPeriodSeconds": 1}),
    );
    let job = load_stream_job(&serde_yaml::to_string(&v).unwrap(), "ha.yaml").unwrap();
    assert_eq!(validate_cel(&job), vec![]);
    let ha = job.spec.job_manager.unwrap().high_availability.unwrap();
    assert_eq!(ha.lease_duration_seconds, Some(6));
}

#[test]
fn cel_rules_accept_the_good_manifest() {
    let job: StreamJob = serde_json::from_value(good_json()).unwrap();
    assert_eq!(validate_cel(&job), vec![]);
}

#[test]
fn wrong_type_names_the_field() {
    let err = load_stream_job(&with("/spec/job/parallelism", json!("two")), "bad.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.job.parallelism"), "{err}");
}

#[test]
fn missing_required_field_names_it() {
    let err = load_stream_job(&with("/spec/job/name", json!(null)), "bad.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.job") && err.contains("name"), "{err}");
}

#[test]
fn a_file_without_a_streamjob_or_with_two_is_rejected() {
    let err = load_stream_job("apiVersion: v1\nkind: ConfigMap\n", "cm.yaml").unwrap_err();
    assert!(
        matches!(err, Error::NotOneStreamJob { found: 0, .. }),
        "{err}"
    );
    let doc = GOOD.split("---").nth(1).unwrap();
    let two = format!("{doc}\n---\n{doc}");
    let err = load_stream_job(&two, "two.yaml").unwrap_err();
    assert!(
        matches!(err, Error::NotOneStreamJob { found: 2, .. }),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut v = good_json();
    set(&mut v, "/spec/job/parallelism", json!(0));
    set(&mut v, "/spec/checkpointing/storage", json!("ftp://x"));
    let yaml = serde_yaml::to_string(&v).unwrap();
    let Error::Invalid { errors, .. } = load_stream_job(&yaml, "bad.yaml").unwrap_err() else {
        panic!("expected Invalid")
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"spec.job.parallelism"), "{fields:?}");
    assert!(fields.contains(&"spec.checkpointing.storage"), "{fields:?}");
}

#[test]
fn the_example_manifests_are_valid_or_rejected_as_documented() {
    let dir = crate::crd::repo_root().join("examples/streamjobs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        seen += 1;
        let yaml = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let result = load_stream_job(&yaml, &name);
        if name.starts_with("bad-") {
            assert!(result.is_err(), "{name} should be rejected");
        } else {
            result.unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert!(
        seen >= 4,
        "expected the example manifests in {}",
        dir.display()
    );
}
