//! Named jobs and their arguments: the registry a worker binary carries.
//!
//! A job is a function that builds a graph on a [`StreamExecutionEnvironment`] from its
//! arguments. The same registry serves `fjord run <job>` on a laptop, a StreamJob manifest
//! run locally, and the JobManager in a cluster, so a job behaves the same everywhere.

use crate::api::env::StreamExecutionEnvironment;
use crate::error::{FjordError, Result};
use std::collections::BTreeMap;
use std::str::FromStr;

/// Arguments of a job in Flink's `ParameterTool` style: `--key value` pairs and `--flag`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobArgs {
    raw: Vec<String>,
    values: BTreeMap<String, String>,
}

impl JobArgs {
    /// Parses `--key value`, `--key=value` and bare `--flag` (value `"true"`). A word that is
    /// not preceded by a `--key` is an error, so typos do not pass silently.
    pub fn parse<I, S>(args: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let raw: Vec<String> = args.into_iter().map(Into::into).collect();
        let mut values = BTreeMap::new();
        let mut i = 0;
        while i < raw.len() {
            let word = &raw[i];
            let Some(key) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
                return Err(FjordError::BadArguments(format!(
                    "unexpected argument '{word}'; job arguments are '--key value' pairs"
                )));
            };
            if let Some((k, v)) = key.split_once('=') {
                values.insert(k.to_string(), v.to_string());
                i += 1;
            } else if i + 1 < raw.len() && !raw[i + 1].starts_with("--") {
                values.insert(key.to_string(), raw[i + 1].clone());
                i += 2;
            } else {
                values.insert(key.to_string(), "true".to_string());
                i += 1;
            }
        }
        Ok(JobArgs { raw, values })
    }

    /// The arguments as given.
    pub fn raw(&self) -> &[String] {
        &self.raw
    }

    /// The value of `--key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `--key`, or an error telling the user to pass it.
    pub fn required(&self, key: &str) -> Result<&str> {
        self.get(key)
            .ok_or_else(|| FjordError::BadArguments(format!("missing --{key} <value>")))
    }

    /// True if `--key` was given.
    pub fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Parses the value of `--key`, falling back to `default` when absent.
    pub fn get_parsed<T: FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| FjordError::BadArguments(format!("--{key} {v}: {e}"))),
        }
    }
}

/// Builds a job's graph on the environment from its arguments.
pub type JobFn = fn(&StreamExecutionEnvironment, &JobArgs) -> Result<()>;

/// A registered job.
#[derive(Clone)]
pub struct JobEntry {
    /// One line saying what the job does and which arguments it takes.
    pub description: &'static str,
    /// The function that builds the job.
    pub build: JobFn,
}

/// The jobs a worker binary can run, by name.
#[derive(Clone, Default)]
pub struct JobRegistry {
    jobs: BTreeMap<String, JobEntry>,
}

impl JobRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a job under a name (replacing an earlier one with that name).
    pub fn register(&mut self, name: &str, description: &'static str, build: JobFn) -> &mut Self {
        self.jobs
            .insert(name.to_string(), JobEntry { description, build });
        self
    }

    /// Adds all jobs of another registry.
    pub fn extend(&mut self, other: JobRegistry) -> &mut Self {
        self.jobs.extend(other.jobs);
        self
    }

    /// The job with this name, or an error listing the registered names.
    pub fn get(&self, name: &str) -> Result<&JobEntry> {
        self.jobs.get(name).ok_or_else(|| FjordError::UnknownJob {
            name: name.to_string(),
            available: self.jobs.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// Names and descriptions, sorted by name.
    pub fn list(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.jobs.iter().map(|(n, e)| (n.as_str(), e.description))
    }

    /// Builds the named job on `env`.
    pub fn build(
        &self,
        name: &str,
        env: &StreamExecutionEnvironment,
        args: &JobArgs,
    ) -> Result<()> {
        (self.get(name)?.build)(env, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parameter_tool_style_arguments() {
        let a =
            JobArgs::parse(["--input", "in.txt", "--verbose", "--n=3", "--output", "o"]).unwrap();
        assert_eq!(a.get("input"), Some("in.txt"));
        assert_eq!(a.get("verbose"), Some("true"));
        assert_eq!(a.get_parsed("n", 0u32).unwrap(), 3);
        assert_eq!(a.get_parsed("missing", 7u32).unwrap(), 7);
        assert!(
            a.get_parsed::<u32>("input", 0)
                .unwrap_err()
                .to_string()
                .contains("--input in.txt")
        );
        assert!(
            a.required("nope")
                .unwrap_err()
                .to_string()
                .contains("missing --nope")
        );
    }

    #[test]
    fn stray_words_are_rejected() {
        let err = JobArgs::parse(["input.txt"]).unwrap_err().to_string();
        assert!(err.contains("unexpected argument 'input.txt'"), "{err}");
    }

    #[test]
    fn unknown_job_lists_available_ones() {
        fn noop(_: &StreamExecutionEnvironment, _: &JobArgs) -> Result<()> {
            Ok(())
        }
        let mut r = JobRegistry::new();
        r.register("b", "", noop).register("a", "", noop);
        let err = r.get("c").err().unwrap().to_string();
        assert_eq!(err, "no job named 'c' is registered; available jobs: a, b");
    }
}
