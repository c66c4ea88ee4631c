//! StreamJob manifests read with the StreamJob types of `fjord-crds` (the `manifests`
//! feature).

use crate::WorkerError;
use crate::local::{FaultTolerance, LocalRun};
use fjord_crds::spec::{CheckpointMode, DesiredJobState};
use std::path::Path;

/// Why a manifest is invalid (the message names the field).
pub use fjord_crds::Error;

/// Reads and validates a StreamJob manifest (the same rules as the API server's schema) and
/// turns it into a local run of the job it names.
///
/// # Errors
/// An unreadable file, invalid YAML or a manifest that breaks a rule (the message names the
/// field), or a manifest whose desired state is `suspended`.
pub fn load(path: &Path) -> Result<LocalRun, WorkerError> {
    Ok(load_with_fault_tolerance(path)?.0)
}

/// [`load`], plus the manifest's checkpointing and restore settings: `spec.checkpointing`
/// (interval, mode, storage, retained), `spec.job.initialSavepointPath` and
/// `spec.job.allowNonRestoredState`. Storage credentials come from the environment locally
/// (`AWS_*`), not from the manifest's Secret.
///
/// # Errors
/// As [`load`].
pub fn load_with_fault_tolerance(path: &Path) -> Result<(LocalRun, FaultTolerance), WorkerError> {
    let yaml = std::fs::read_to_string(path).map_err(|source| WorkerError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let file = path.display().to_string();
    let job = fjord_crds::load_stream_job(&yaml, &file)?;
    // spec.job.sqlFrom: the ConfigMap is another document of the same file.
    let spec = &fjord_crds::sql_source::resolve(
        &job.spec.job,
        |name| fjord_crds::sql_source::config_map_in_manifest(&yaml, name),
        |r| {
            format!(
                "is not in {file}: add it to the file as another YAML document (---, kind: ConfigMap, data: {{{}: ...}}), or put the script in spec.job.sql",
                r.key
            )
        },
    )
    .map_err(|e| WorkerError::Config(e.to_string()))?;
    if spec.state == DesiredJobState::Suspended {
        return Err(WorkerError::Suspended);
    }
    if let Some(snapshot) = &spec.initial_savepoint_snapshot {
        return Err(WorkerError::Config(format!(
            "spec.job.initialSavepointSnapshot ({snapshot}) names a StreamJobSnapshot, which exists only in a cluster; run with --from-savepoint PATH (its status.path: kubectl get sjs {snapshot} -o jsonpath='{{.status.path}}') instead"
        )));
    }
    let checkpointing = job.spec.checkpointing.as_ref();
    let fault_tolerance = FaultTolerance {
        checkpoint_interval: checkpointing.map(|c| {
            c.interval
                .map(std::time::Duration::from)
                .unwrap_or(fjord_crds::spec::StreamJobSpec::DEFAULT_CHECKPOINT_INTERVAL)
        }),
        checkpoint_storage: checkpointing.and_then(|c| c.storage.clone()),
        at_least_once: checkpointing.and_then(|c| c.mode) == Some(CheckpointMode::AtLeastOnce),
        retained: checkpointing
            .and_then(|c| c.retained)
            .map(|r| r.max(1) as usize),
        restore_from: spec.initial_savepoint_path.clone(),
        allow_non_restored_state: spec.allow_non_restored_state,
    };
    let (job, args) = spec.registered_job();
    let run = LocalRun {
        job,
        args,
        parallelism: Some(spec.parallelism.max(1) as usize),
        max_parallelism: spec.max_parallelism.map(|m| m.max(1) as usize),
    };
    Ok((run, fault_tolerance))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
apiVersion: fjord.dev/v1alpha1
kind: StreamJob
metadata:
  name: words
spec:
  image: fjord/worker:dev
  job:
    name: wordcount
    args: ["--input", "in.txt"]
    parallelism: 3
    upgradeMode: stateless
"#;

    #[test]
    fn a_manifest_becomes_the_same_local_run_as_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.yaml");
        std::fs::write(&path, MANIFEST).unwrap();
        let run = load(&path).unwrap();
        assert_eq!(
            run,
            LocalRun {
                job: "wordcount".into(),
                args: vec!["--input".into(), "in.txt".into()],
                parallelism: Some(3),
                max_parallelism: None
            }
        );
    }

    #[test]
    fn a_bad_manifest_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, MANIFEST.replace("parallelism: 3", "parallelism: 0")).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("spec.job.parallelism"), "{err}");
    }

    #[test]
    fn a_script_from_a_config_map_is_read_from_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sql.yaml");
        let job = MANIFEST
            .replace(
                "    name: wordcount\n",
                "    sqlFrom:\n      configMapKeyRef: {name: words-sql, key: job.sql}\n",
            )
            .replace("    args: [\"--input\", \"in.txt\"]\n", "");
        let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: words-sql\ndata:\n  job.sql: INSERT INTO x SELECT 1;\n---";
        std::fs::write(&path, format!("{config_map}{job}")).unwrap();
        let run = load(&path).unwrap();
        assert_eq!(run.job, "sql");
        assert_eq!(run.args, ["--script=INSERT INTO x SELECT 1;"]);
        std::fs::write(&path, &job).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("ConfigMap 'words-sql' is not in") && err.contains("sql.yaml"),
            "{err}"
        );
    }

    #[test]
    fn a_suspended_manifest_is_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(
            &path,
            MANIFEST.replace("parallelism: 3", "parallelism: 3\n    state: suspended"),
        )
        .unwrap();
        assert!(matches!(load(&path), Err(WorkerError::Suspended)));
    }
}
