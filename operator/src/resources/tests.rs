use fjord_crds::StreamJob;

use super::*;

fn job(spec_yaml: &str) -> StreamJob {
    let mut job: StreamJob = serde_yaml::from_str(&format!(
        "apiVersion: fjord.dev/v1alpha1\nkind: StreamJob\nmetadata: {{name: counting, namespace: streams, uid: 1234-abcd}}\nspec:\n{spec_yaml}"
    ))
    .unwrap();
    job.metadata.generation = Some(1);
    job
}

const SPEC: &str = r#"
  image: fjord/fjord:0.1.0
  imagePullPolicy: Always
  job: {name: counting, args: ["--rate", "5"], parallelism: 5}
  taskManager:
    slots: 2
    resources: {requests: {cpu: "1", memory: 1Gi}, limits: {memory: 1Gi}}
    podTemplate:
      metadata: {labels: {team: data}}
      spec:
        nodeSelector: {pool: streaming}
        containers:
          - name: fjord
            image: attacker/override
            env: [{name: EXTRA, value: "1"}]
          - name: sidecar
            image: busybox
  jobManager:
    resources: {requests: {cpu: 500m, memory: 512Mi}}
  podTemplate:
    spec:
      serviceAccountName: streaming
  checkpointing: {interval: 30s, storage: "s3://bucket/cp", mode: at-least-once}
  storageCredentials: {name: minio-credentials}
  configuration: {pipeline.object-reuse: "true", job.parallelism: "99"}
"#;

fn build(restore: Option<&str>) -> Desired {
    let j = job(SPEC);
    desired(&j, &j.spec, restore, 1).unwrap()
}

fn main_container(d: &Deployment) -> &Container {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .find(|c| c.name == MAIN_CONTAINER)
        .unwrap()
}

#[test]
fn every_child_is_owned_by_the_streamjob_and_labelled() {
    let d = build(None);
    let metas = [
        &d.config_map.metadata,
        &d.jobmanager.metadata,
        &d.jobmanager_service.metadata,
        &d.taskmanager.metadata,
    ];
    for m in metas {
        let owner = &m.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("StreamJob", "counting", "1234-abcd")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(m.namespace.as_deref(), Some("streams"));
        assert_eq!(m.labels.as_ref().unwrap()[STREAMJOB_LABEL], "counting");
    }
    assert_eq!(
        d.jobmanager.metadata.name.as_deref(),
        Some("counting-jobmanager")
    );
    assert_eq!(
        d.taskmanager.metadata.name.as_deref(),
        Some("counting-taskmanager")
    );
    assert_eq!(
        d.config_map.metadata.name.as_deref(),
        Some("counting-config")
    );
}

#[test]
fn taskmanager_replicas_follow_parallelism_and_slots() {
    let d = build(None);
    assert_eq!(d.taskmanager.spec.as_ref().unwrap().replicas, Some(3)); // ceil(5 / 2)
    assert_eq!(d.jobmanager.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        d.jobmanager
            .spec
            .as_ref()
            .unwrap()
            .strategy
            .as_ref()
            .unwrap()
            .type_
            .as_deref(),
        Some("Recreate"),
        "never two JobManagers during a rollout"
    );
}

#[test]
fn pod_template_overrides_merge_but_the_operator_keeps_image_and_args() {
    let d = build(None);
    let pod = d.taskmanager.spec.as_ref().unwrap().template.clone();
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("streaming"));
    assert_eq!(spec.node_selector.as_ref().unwrap()["pool"], "streaming");
    assert_eq!(spec.containers.len(), 2, "sidecar kept");
    let main = main_container(&d.taskmanager);
    assert_eq!(main.image.as_deref(), Some("fjord/fjord:0.1.0"));
    assert_eq!(main.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(main.args.as_ref().unwrap()[0], "taskmanager");
    let env: Vec<&str> = main
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert!(
        env.contains(&"EXTRA") && env.contains(&"FJORD_POD_NAME"),
        "{env:?}"
    );
    assert_eq!(
        pod.metadata.as_ref().unwrap().labels.as_ref().unwrap()["team"],
        "data"
    );
    let tm_res = main.resources.as_ref().unwrap();
    assert_eq!(tm_res.requests.as_ref().unwrap()["memory"].0, "1Gi");
    let jm = main_container(&d.jobmanager);
    assert_eq!(jm.args.as_ref().unwrap()[0], "jobmanager");
    // `fjord jobmanager` reads FJORD_REST_ADDRESS: its REST API binds the Pod's own address.
    let rest_address = jm
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "FJORD_REST_ADDRESS")
        .and_then(|e| e.value_from.as_ref()?.field_ref.as_ref())
        .map(|f| f.field_path.as_str());
    assert_eq!(rest_address, Some("status.podIP"));
    assert!(
        !main
            .env
            .iter()
            .flatten()
            .any(|e| e.name == "FJORD_REST_ADDRESS"),
        "only the JobManager serves REST"
    );
    assert_eq!(
        jm.resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0,
        "500m"
    );
    // The JobManager did not get the TaskManager-only overrides.
    let jm_spec = d
        .jobmanager
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(jm_spec.containers.len(), 1);
    assert_eq!(jm_spec.service_account_name.as_deref(), Some("streaming"));
}

#[test]
fn storage_credentials_come_from_the_secret_never_the_configmap() {
    let d = build(None);
    for deployment in [&d.jobmanager, &d.taskmanager] {
        let from = main_container(deployment).env_from.as_ref().unwrap();
        assert_eq!(
            from[0].secret_ref.as_ref().unwrap().name,
            "minio-credentials"
        );
    }
    let config = &d.config_map.data.as_ref().unwrap()[CONFIG_FILE];
    assert!(!config.contains("minio-credentials"));
    assert!(!config.to_ascii_lowercase().contains("secret"));
}

#[test]
fn configuration_has_managed_keys_over_user_keys() {
    let j = job(SPEC);
    let c = configuration("counting", &j.spec, Some("s3://bucket/sp/1"));
    assert_eq!(
        c["job.parallelism"], "5",
        "managed key wins over spec.configuration"
    );
    assert_eq!(c["pipeline.object-reuse"], "true");
    assert_eq!(c["job.args"], r#"["--rate","5"]"#);
    assert_eq!(c["checkpointing.interval-ms"], "30000");
    assert_eq!(c["checkpointing.mode"], "at-least-once");
    assert_eq!(c["savepoints.directory"], "s3://bucket/cp/savepoints");
    assert_eq!(c["restore.path"], "s3://bucket/sp/1");
    assert_eq!(c["jobmanager.rpc.address"], "counting-jobmanager:6123");
    assert!(!configuration("counting", &j.spec, None).contains_key("restore.path"));
}

#[test]
fn a_new_restore_path_changes_the_config_hash_so_pods_roll() {
    let hash = |d: &Desired| {
        d.jobmanager
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[CONFIG_HASH_ANNOTATION]
            .clone()
    };
    assert_eq!(hash(&build(None)), hash(&build(None)));
    assert_ne!(hash(&build(None)), hash(&build(Some("s3://bucket/sp/1"))));
}

#[test]
fn service_selects_the_jobmanager_and_exposes_rest_and_rpc() {
    let d = build(None);
    let spec = d.jobmanager_service.spec.as_ref().unwrap();
    assert_eq!(
        spec.selector.as_ref().unwrap(),
        &selector("counting", Component::JobManager)
    );
    let ports: Vec<i32> = spec
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, [REST_PORT, RPC_PORT]);
    assert_eq!(
        rest_base_url("counting", "streams"),
        "http://counting-jobmanager.streams.svc:8081/v1"
    );
    assert_eq!(
        selector_string("counting"),
        "app.kubernetes.io/component=taskmanager,fjord.dev/streamjob=counting"
    );
}

#[test]
fn a_broken_pod_template_is_a_build_error_naming_the_component() {
    let j = job(
        "  image: i\n  job: {name: j}\n  taskManager:\n    podTemplate: {spec: {nodeSelector: not-a-map}}\n",
    );
    let err = desired(&j, &j.spec, None, 1).unwrap_err().to_string();
    assert!(err.contains("taskmanager pod template"), "{err}");
}

#[test]
fn missing_uid_is_an_error_not_an_orphan() {
    let mut j = job(SPEC);
    j.metadata.uid = None;
    assert!(matches!(
        desired(&j, &j.spec, None, 1),
        Err(Error::MissingMetadata(_))
    ));
}

#[test]
fn the_job_id_is_stable_per_deployed_generation_and_new_for_the_next() {
    let a = job_id("uid-1", 3, None);
    assert_eq!(a, job_id("uid-1", 3, None));
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, job_id("uid-1", 4, None));
    assert_ne!(a, job_id("uid-2", 3, None));
    // A ConfigMap script's edit (spec.job.sqlFrom) is a new deployment of the same generation.
    let edited = job_id("uid-1", 3, Some("4711"));
    assert_eq!(edited, job_id("uid-1", 3, Some("4711")));
    assert_ne!(edited, a);
    assert_ne!(edited, job_id("uid-1", 3, Some("4712")));
}

#[test]
fn s3_storage_requires_both_keys_from_the_credentials_secret() {
    let d = build(None);
    for deployment in [&d.jobmanager, &d.taskmanager] {
        let env = main_container(deployment).env.as_ref().unwrap();
        for key in S3_KEYS {
            let var = env.iter().find(|e| e.name == key).expect(key);
            let r = var
                .value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap();
            assert_eq!(
                (r.name.as_str(), r.key.as_str()),
                ("minio-credentials", key)
            );
            assert_eq!(
                r.optional,
                Some(false),
                "a missing key must stop the container"
            );
        }
        let named = env
            .iter()
            .find(|e| e.name == "FJORD_STORAGE_CREDENTIALS")
            .unwrap();
        assert_eq!(named.value.as_deref(), Some("minio-credentials"));
    }
    // file:// storage needs no S3 keys.
    let j = job(&SPEC.replace("s3://bucket/cp", "file:///tmp/cp"));
    let d = desired(&j, &j.spec, None, 1).unwrap();
    let env = main_container(&d.jobmanager).env.as_ref().unwrap();
    assert!(env.iter().all(|e| !S3_KEYS.contains(&e.name.as_str())));
}

#[test]
fn service_account_logging_and_ingress() {
    let j = job(&format!(
        "{SPEC}  serviceAccount: counting-sa\n  ingress: {{host: counting.example.com, className: nginx, tlsSecretName: counting-tls, annotations: {{a: b}}}}\n"
    )
    .replace(
        "  jobManager:\n",
        "  jobManager:\n    logging: {level: debug, format: json}\n",
    ));
    let d = desired(&j, &j.spec, None, 1).unwrap();
    for deployment in [&d.jobmanager, &d.taskmanager] {
        let pod = deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        // spec.serviceAccount wins over the pod template's serviceAccountName.
        assert_eq!(pod.service_account_name.as_deref(), Some("counting-sa"));
    }
    let env = |d: &Deployment| {
        main_container(d)
            .env
            .clone()
            .unwrap()
            .into_iter()
            .filter(|e| e.name.starts_with("FJORD_LOG"))
            .map(|e| (e.name, e.value.unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        env(&d.jobmanager),
        [
            ("FJORD_LOG".to_string(), "debug".to_string()),
            ("FJORD_LOG_FORMAT".to_string(), "json".to_string())
        ]
    );
    assert!(env(&d.taskmanager).is_empty(), "per role");

    let ing = ingress(&j).unwrap().unwrap();
    assert_eq!(ing.metadata.name.as_deref(), Some("counting-rest"));
    assert_eq!(
        ing.metadata.owner_references.as_ref().unwrap()[0].name,
        "counting"
    );
    let spec = ing.spec.unwrap();
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let rule = &spec.rules.unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("counting.example.com"));
    let path = &rule.http.as_ref().unwrap().paths[0];
    assert_eq!(path.path.as_deref(), Some("/"));
    let svc = path.backend.service.as_ref().unwrap();
    assert_eq!(svc.name, "counting-jobmanager");
    assert_eq!(svc.port.as_ref().unwrap().name.as_deref(), Some("rest"));
    assert_eq!(
        spec.tls.unwrap()[0].secret_name.as_deref(),
        Some("counting-tls")
    );
    assert!(ingress(&job(SPEC)).unwrap().is_none());
}

#[test]
fn pods_meet_pod_security_restricted_and_templates_can_change_it() {
    let d = build(None);
    for deployment in [&d.jobmanager, &d.taskmanager] {
        let spec = deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        let pod_sc = spec.security_context.as_ref().unwrap();
        assert_eq!(pod_sc.run_as_non_root, Some(true));
        assert_eq!(pod_sc.run_as_user, Some(crate::podsecurity::RUN_AS_USER));
        assert_eq!(
            pod_sc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let main = main_container(deployment);
        let sc = main.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        // The read-only root filesystem leaves /tmp writable (an emptyDir), next to the
        // read-only configuration.
        let mounts: Vec<(&str, &str)> = main
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert!(mounts.contains(&("fjord-tmp", "/tmp")), "{mounts:?}");
        assert!(mounts.contains(&("fjord-config", CONFIG_DIR)), "{mounts:?}");
        let scratch = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "fjord-tmp")
            .unwrap();
        assert!(scratch.empty_dir.is_some());
    }

    // A template sets its own user; the rest of the baseline stays.
    let j = job(&format!(
        "{SPEC}  jobManager:\n    podTemplate:\n      spec:\n        securityContext: {{runAsUser: 1001}}\n"
    )
    .replace(
        "  jobManager:\n    resources: {requests: {cpu: 500m, memory: 512Mi}}\n",
        "",
    ));
    let d = desired(&j, &j.spec, None, 1).unwrap();
    let sc = d
        .jobmanager
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let sc = sc.security_context.as_ref().unwrap();
    assert_eq!(sc.run_as_user, Some(1001));
    assert_eq!(sc.run_as_non_root, Some(true));
}

#[test]
fn a_rescale_in_place_changes_the_configmap_and_replicas_but_not_the_pods() {
    let j = job(SPEC);
    let template =
        |d: &Deployment| serde_json::to_value(&d.spec.as_ref().unwrap().template).unwrap();
    let config = |d: &Desired| d.config_map.data.as_ref().unwrap()[CONFIG_FILE].clone();
    let replicas = |d: &Desired| d.taskmanager.spec.as_ref().unwrap().replicas;
    let deployed = desired(&j, &j.spec, None, 1).unwrap();
    // The same parallelism as deployed: exactly what `desired` builds.
    assert_eq!(
        desired_at(&j, &j.spec, None, (1, None), Some(5)).unwrap(),
        deployed
    );
    let rescaled = desired_at(&j, &j.spec, None, (1, None), Some(8)).unwrap();
    // Pods as they are (same config hash): nothing restarts.
    assert_eq!(
        template(&rescaled.jobmanager),
        template(&deployed.jobmanager)
    );
    assert_eq!(
        template(&rescaled.taskmanager),
        template(&deployed.taskmanager)
    );
    // The ConfigMap says what runs (a restarted JobManager recovers at it), and the
    // TaskManagers follow (8 subtasks, 2 slots each).
    assert!(
        config(&deployed).contains(r#""job.parallelism": "5""#),
        "{}",
        config(&deployed)
    );
    assert!(
        config(&rescaled).contains(r#""job.parallelism": "8""#),
        "{}",
        config(&rescaled)
    );
    assert_eq!(replicas(&deployed), Some(3));
    assert_eq!(replicas(&rescaled), Some(4));
}

#[test]
fn security_mounts_its_secrets_and_sets_its_keys() {
    let secured =
        format!("{SPEC}  security:\n    tls: {{enabled: true}}\n    restAuth: {{enabled: true}}\n");
    let secured_job = job(&secured);
    let d = desired(&secured_job, &secured_job.spec, None, 1).unwrap();
    let conf = &d.config_map.data.as_ref().unwrap()[CONFIG_FILE];
    for line in [
        r#""security.ssl.internal.enabled": "true""#,
        r#""security.ssl.internal.dir": "/etc/fjord-tls""#,
        r#""security.rest.token-file": "/etc/fjord-rest-token/token""#,
    ] {
        assert!(conf.contains(line), "{line} missing from\n{conf}");
    }
    let mounts = |dep: &Deployment| {
        let pod = dep.spec.as_ref().unwrap().template.spec.clone().unwrap();
        let volumes: Vec<(String, Option<String>)> = pod
            .volumes
            .unwrap()
            .into_iter()
            .map(|v| (v.name, v.secret.and_then(|s| s.secret_name)))
            .collect();
        let paths: Vec<String> = pod.containers[0]
            .volume_mounts
            .clone()
            .unwrap()
            .into_iter()
            .map(|m| m.mount_path)
            .collect();
        (volumes, paths)
    };
    let (jm_volumes, jm_paths) = mounts(&d.jobmanager);
    assert!(jm_volumes.contains(&("fjord-tls".into(), Some("counting-tls".into()))));
    assert!(jm_volumes.contains(&(
        "fjord-rest-token".into(),
        Some("counting-rest-token".into())
    )));
    assert!(jm_paths.contains(&"/etc/fjord-tls".to_string()));
    assert!(jm_paths.contains(&"/etc/fjord-rest-token".to_string()));
    assert!(jm_paths.contains(&CONFIG_DIR.to_string()));
    let (tm_volumes, tm_paths) = mounts(&d.taskmanager);
    assert!(tm_volumes.contains(&("fjord-tls".into(), Some("counting-tls".into()))));
    assert!(
        !tm_paths.contains(&"/etc/fjord-rest-token".to_string()),
        "the token stays in the JobManager"
    );

    // Turning security on changes the configuration hash, so the Pods roll.
    let plain = job(SPEC);
    let p = desired(&plain, &plain.spec, None, 1).unwrap();
    let hash = |d: &Deployment| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[CONFIG_HASH_ANNOTATION]
            .clone()
    };
    assert_ne!(hash(&p.jobmanager), hash(&d.jobmanager));
}

#[test]
fn the_dashboard_url_is_the_ingress_or_the_service() {
    // (spec.ingress, spec.security, expected status.dashboardUrl)
    let table = [
        ("", "", "http://counting-jobmanager.streams.svc:8081/"),
        (
            "",
            "  security: {tls: {enabled: true, rest: true}}\n",
            "https://counting-jobmanager.streams.svc:8081/",
        ),
        (
            "  ingress: {host: counting.example.com}\n",
            "",
            "http://counting.example.com/",
        ),
        (
            "  ingress: {host: counting.example.com, path: /jobs/counting, tlsSecretName: t}\n",
            "",
            "https://counting.example.com/jobs/counting/",
        ),
        // No host: the ingress controller's address is not in the spec.
        (
            "  ingress: {className: nginx}\n",
            "",
            "http://counting-jobmanager.streams.svc:8081/",
        ),
    ];
    for (ingress, security, expected) in table {
        let j = job(&format!("{SPEC}{ingress}{security}"));
        assert_eq!(
            dashboard_url("counting", "streams", &j.spec, &j.spec),
            expected,
            "{ingress}{security}"
        );
    }
    // The Service's scheme follows the deployed spec (what the running JobManager serves).
    let plain = job(SPEC);
    let secured = job(&format!(
        "{SPEC}  security: {{tls: {{enabled: true, rest: true}}}}\n"
    ));
    assert_eq!(
        dashboard_url("counting", "streams", &secured.spec, &plain.spec),
        "http://counting-jobmanager.streams.svc:8081/"
    );
}

#[test]
fn high_availability_runs_standby_job_managers_behind_a_leader_only_service() {
    let j = job(r#"
  image: fjord/fjord:0.1.0
  job: {name: counting, parallelism: 2}
  jobManager:
    replicas: 2
    highAvailability: {leaseDurationSeconds: 6, renewDeadlineSeconds: 4}
  checkpointing: {storage: "s3://bucket/cp"}
"#);
    let d = desired(&j, &j.spec, None, 1).unwrap();
    let spec = d.jobmanager.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("counting-jobmanager")
    );
    let selector = d
        .jobmanager_service
        .spec
        .as_ref()
        .unwrap()
        .selector
        .clone()
        .unwrap();
    assert_eq!(selector[high_availability::LEADER_LABEL], "true");
    // The Deployment's own selector does not need the label (standbys are its Pods too).
    assert!(
        !spec
            .selector
            .match_labels
            .as_ref()
            .unwrap()
            .contains_key(high_availability::LEADER_LABEL)
    );
    let config = d.config_map.data.as_ref().unwrap()[CONFIG_FILE].clone();
    for line in [
        r#""high-availability.type": "kubernetes""#,
        r#""high-availability.kubernetes.lease-name": "counting-jobmanager-leader""#,
        r#""high-availability.kubernetes.leader-label": "fjord.dev/jobmanager-leader=true""#,
        r#""high-availability.leader-election.lease-duration": "6s""#,
        r#""high-availability.leader-election.renew-deadline": "4s""#,
        r#""high-availability.leader-election.retry-period": "2s""#,
    ] {
        assert!(config.contains(line), "{line} in\n{config}");
    }
    let rbac = d.jobmanager_rbac.expect("HA RBAC");
    assert_eq!(
        rbac.service_account.unwrap().metadata.name.as_deref(),
        Some("counting-jobmanager")
    );
    let rules = rbac.role.rules.unwrap();
    assert_eq!(
        rules[0].resources.as_deref(),
        Some(&["leases".to_string()][..])
    );
    assert_eq!(rules[0].verbs, ["get", "create", "update"]);
    assert_eq!(
        rules[1].resources.as_deref(),
        Some(&["pods".to_string()][..])
    );
    assert_eq!(rules[1].verbs, ["get", "patch"]);
    let subject = &rbac.role_binding.subjects.unwrap()[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        ("counting-jobmanager", Some("streams"))
    );
    assert_eq!(rbac.role_binding.role_ref.name, "counting-jobmanager-ha");
}

#[test]
fn without_high_availability_one_job_manager_and_no_rbac() {
    let d = build(None);
    assert_eq!(d.jobmanager.spec.as_ref().unwrap().replicas, Some(1));
    assert!(d.jobmanager_rbac.is_none());
    let selector = d.jobmanager_service.spec.unwrap().selector.unwrap();
    assert!(!selector.contains_key(high_availability::LEADER_LABEL));
    assert!(
        !d.config_map.data.unwrap()[CONFIG_FILE].contains("high-availability"),
        "no HA keys"
    );
}
