//! The operator's checks of a StreamJob spec. They run on every pass; a failure becomes a
//! `Degraded` condition (`InvalidSpec`) and an Event, and the operator keeps the running job as
//! it is (never a crash loop, never a half-applied spec).
//!
//! Every rule is also in the CRD schema (CEL), so the API server refuses such a spec before it
//! is stored, and `fjord run` refuses it locally with the same words: the operator's pass only
//! catches objects stored before a rule existed.

use fjord_crds::{FieldError, StreamJobSpec};

/// Every problem with `spec` for running it in a cluster: the rules of
/// [`fjord_crds::validate_spec`] (credential-looking configuration keys, `memory://` storage with
/// a stateful upgrade mode and parallelism bounds included), and a `spec.job.sql` script
/// planned as the workers will plan it.
pub fn validate(spec: &StreamJobSpec) -> Vec<FieldError> {
    let mut errors = fjord_crds::validate_spec(spec);
    if let Some(script) = spec.job.sql.as_deref().filter(|s| !s.trim().is_empty()) {
        errors.extend(sql_errors(script));
    }
    errors
}

/// What keeps `script` from running as a StreamJob: a planning error (with its line and
/// column), or a `SET` of what the spec decides (parallelism, checkpoint interval), which
/// would fight the operator's rescaling and the spec's checkpointing.
pub fn sql_errors(script: &str) -> Vec<FieldError> {
    sql_errors_of(script, "spec.job.sql")
}

/// [`sql_errors`] of a script that comes from `field` (`spec.job.sqlFrom` for a ConfigMap's).
pub fn sql_errors_of(script: &str, field: &str) -> Vec<FieldError> {
    let job = match fjord_sql::plan_portable(script) {
        Ok(job) => job,
        // A function the stock planner does not know may be registered in the StreamJob's
        // image (a worker binary of one's own, `fjord_worker::main_with_functions`): the
        // operator cannot see it, so the workers plan the script and report a real mistake
        // (the job fails at start with the line and column, as a missing file does).
        Err(e) if e.kind() == Some(fjord_sql::ErrorKind::UnknownFunction) => return Vec::new(),
        Err(e) => return vec![FieldError::new(field, e.to_string())],
    };
    let mut errors = Vec::new();
    if job.settings.parallelism.is_some() {
        errors.push(FieldError::new(
            field,
            "the script sets 'parallelism.default'; remove that SET and use spec.job.parallelism (the operator rescales through it)",
        ));
    }
    if job.settings.checkpoint_interval.is_some() {
        errors.push(FieldError::new(
            field,
            "the script sets 'execution.checkpointing.interval'; remove that SET and use spec.checkpointing.interval",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_crds::UpgradeMode;

    fn spec(extra: &str) -> StreamJobSpec {
        serde_yaml::from_str(&format!(
            "image: i\njob: {{name: j}}\ncheckpointing: {{storage: 's3://b/cp'}}\n{extra}"
        ))
        .unwrap()
    }

    fn sql_spec(script: &str) -> StreamJobSpec {
        let mut s = spec("");
        s.job.name = String::new();
        s.job.sql = Some(script.to_string());
        s
    }

    const SCRIPT: &str = "CREATE TABLE src (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '/data/in-the-pod', 'format' = 'csv');
CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT id FROM src;";

    #[test]
    fn a_sql_script_is_planned_without_looking_up_its_paths_here() {
        assert!(validate(&sql_spec(SCRIPT)).is_empty());
        let (job, args) = sql_spec(SCRIPT).job.registered_job();
        assert_eq!(job, "sql");
        assert_eq!(args, [format!("--script={SCRIPT}")]);
    }

    #[test]
    fn a_function_only_the_image_knows_is_left_to_the_workers() {
        let udf = SCRIPT.replace("SELECT id FROM", "SELECT my_udf(id) FROM");
        assert!(validate(&sql_spec(&udf)).is_empty());
        // Every other mistake is still caught here.
        let typo = SCRIPT.replace("SELECT id FROM", "SELECT idd FROM");
        assert_eq!(validate(&sql_spec(&typo)).len(), 1);
    }

    #[test]
    fn the_sql_example_plans() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/streamjobs/sql-order-counts.yaml"
        );
        let job =
            fjord_crds::load_stream_job(&std::fs::read_to_string(path).unwrap(), path).unwrap();
        assert!(job.spec.job.sql.is_some());
        assert_eq!(validate(&job.spec), vec![]);
    }

    #[test]
    fn a_bad_sql_script_names_line_and_column() {
        let errors = validate(&sql_spec(
            &SCRIPT.replace("SELECT id FROM", "SELECT idd FROM"),
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.job.sql");
        assert!(
            errors[0].message.starts_with("line 3, column ") && errors[0].message.contains("idd"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_sql_script_may_not_set_what_the_spec_decides() {
        let script = format!(
            "SET 'parallelism.default' = '4';\nSET 'execution.checkpointing.interval' = '1s';\n{SCRIPT}"
        );
        let errors = validate(&sql_spec(&script));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].message.contains("spec.job.parallelism"));
        assert!(errors[1].message.contains("spec.checkpointing.interval"));
    }

    #[test]
    fn sql_goes_without_a_job_name_and_arguments() {
        let mut s = sql_spec(SCRIPT);
        s.job.name = "counting".into();
        assert_eq!(validate(&s)[0].field, "spec.job.name");
        let mut s = sql_spec(SCRIPT);
        s.job.args = vec!["--x".into()];
        assert_eq!(validate(&s)[0].field, "spec.job.name");
        let mut s = spec("");
        s.job.name = String::new();
        assert_eq!(validate(&s)[0].field, "spec.job.name");
    }

    #[test]
    fn credentials_in_configuration_are_rejected() {
        let errors = validate(&spec(
            "configuration: {s3.Secret-Key: hunter2, s3.region: x}\n",
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.configuration");
        assert!(
            errors[0]
                .message
                .contains("spec.configuration.s3.Secret-Key"),
            "{errors:?}"
        );
        assert!(
            !errors[0].message.contains("hunter2"),
            "never echo the value"
        );
    }

    #[test]
    fn memory_storage_with_a_stateful_mode_is_rejected() {
        let mut s = spec("");
        s.checkpointing.as_mut().unwrap().storage = Some("memory://cp".into());
        assert_eq!(validate(&s)[0].field, "spec.checkpointing.storage");
        s.job.upgrade_mode = UpgradeMode::Stateless;
        assert!(validate(&s).is_empty());
    }

    #[test]
    fn parallelism_above_the_default_max_parallelism_is_rejected() {
        let mut s = spec("");
        s.job.parallelism = 1000;
        let errors = validate(&s);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.job.parallelism");
        assert!(errors[0].message.contains("128"), "{errors:?}");
        s.job.max_parallelism = Some(1000);
        assert!(validate(&s).is_empty());
    }

    #[test]
    fn a_good_spec_passes() {
        assert!(validate(&spec("")).is_empty());
    }
}
