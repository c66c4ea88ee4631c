//! Named jobs and their arguments: the registry a worker binary carries.
//!
//! A job is a function that builds a graph on a [`StreamExecutionEnvironment`] from its
//! arguments. The same registry serves `fjord run <job>` on a laptop, a StreamJob manifest
//! run locally, and the JobManager in a cluster, so a job behaves the same everywhere.

use crate::api::env::StreamExecutionEnvironment;
use crate::error::{FjordError, Result};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

/// Arguments of a job in Flink's `ParameterTool` style: `--key value` pairs and `--flag`s.
///
/// A job declares the arguments it takes by reading them ([`get`](Self::get),
/// [`has`](Self::has), [`required`](Self::required), [`get_parsed`](Self::get_parsed)) while it
/// builds its graph; [`JobRegistry::build`] then rejects arguments the job never read (a
/// misspelled `--rte` is an error, not a silently ignored value) and flags given without the
/// value the job reads them as (`--output` with nothing after it).
#[derive(Debug, Clone, Default)]
pub struct JobArgs {
    raw: Vec<String>,
    /// Keys in the order given, and their values (`None`: a bare `--flag`).
    values: Vec<(String, Option<String>)>,
    usage: Arc<Mutex<Usage>>,
}

/// How the job read its arguments while it built its graph.
#[derive(Debug, Default)]
struct Usage {
    /// Every key the job asked about, given or not.
    read: BTreeSet<String>,
    /// Bare flags the job read as a value.
    missing_value: BTreeSet<String>,
    /// Canonical spellings of the numbers the job parsed (`10000.0` and `1e4` are `10000`).
    numbers: BTreeMap<String, String>,
}

impl PartialEq for JobArgs {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for JobArgs {}

/// Spellings of floating-point values that are not numbers a job can use.
fn not_finite(text: &str) -> bool {
    let t = text
        .trim()
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase();
    matches!(t.as_str(), "nan" | "inf" | "infinity")
}

/// The canonical spelling of a number: integers without fraction or exponent, other values
/// in Rust's shortest round-trip form; `None` when `text` is not a finite number.
fn canonical_number(text: &str) -> Option<String> {
    let n: f64 = text.trim().parse().ok()?;
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return Some(format!("{}", n as i64));
    }
    Some(format!("{n}"))
}

impl JobArgs {
    /// Parses `--key value`, `--key=value` and bare `--flag`. A word that is not preceded by a
    /// `--key` is an error, so typos do not pass silently; so is a key given twice.
    pub fn parse<I, S>(args: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let raw: Vec<String> = args.into_iter().map(Into::into).collect();
        let mut values: Vec<(String, Option<String>)> = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            let word = &raw[i];
            let Some(key) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
                return Err(FjordError::BadArguments(format!(
                    "unexpected argument '{word}'; job arguments are '--key value' pairs"
                )));
            };
            let (key, value) = if let Some((k, v)) = key.split_once('=') {
                i += 1;
                (k.to_string(), Some(v.to_string()))
            } else if i + 1 < raw.len() && !raw[i + 1].starts_with("--") {
                i += 2;
                (key.to_string(), Some(raw[i - 1].clone()))
            } else {
                i += 1;
                (key.to_string(), None)
            };
            if key.is_empty() {
                return Err(FjordError::BadArguments(format!(
                    "unexpected argument '{word}'; job arguments are '--key value' pairs"
                )));
            }
            if values.iter().any(|(k, _)| *k == key) {
                return Err(FjordError::BadArguments(format!(
                    "--{key} is given twice; give it once"
                )));
            }
            values.push((key, value));
        }
        Ok(JobArgs {
            raw,
            values,
            usage: Arc::default(),
        })
    }

    /// The arguments as given.
    pub fn raw(&self) -> &[String] {
        &self.raw
    }

    fn lookup(&self, key: &str) -> Option<&Option<String>> {
        self.usage.lock().read.insert(key.to_string());
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `--key`, if given with one. A bare `--key` (no value) reads as absent
    /// here, and [`JobRegistry::build`] reports that it needs a value.
    pub fn get(&self, key: &str) -> Option<&str> {
        match self.lookup(key)? {
            Some(v) => Some(v.as_str()),
            None => {
                self.usage.lock().missing_value.insert(key.to_string());
                None
            }
        }
    }

    /// The value of `--key`, or an error telling the user to pass it.
    pub fn required(&self, key: &str) -> Result<&str> {
        self.get(key)
            .ok_or_else(|| FjordError::BadArguments(format!("missing --{key} <value>")))
    }

    /// True if `--key` was given (with or without a value).
    pub fn has(&self, key: &str) -> bool {
        self.lookup(key).is_some()
    }

    /// Parses the value of `--key`, falling back to `default` when absent. A bare `--key`
    /// parses as `true` (for boolean flags). `NaN` and infinities are refused, so a number
    /// argument is always finite.
    pub fn get_parsed<T: FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let value = match self.lookup(key) {
            None => return Ok(default),
            Some(None) => {
                return "true".parse().map_err(|_| {
                    FjordError::BadArguments(format!("--{key} needs a value: --{key} <value>"))
                });
            }
            Some(Some(v)) => v,
        };
        if not_finite(value) {
            return Err(FjordError::BadArguments(format!(
                "--{key} {value}: not a finite number; give a number such as 1 or 2.5"
            )));
        }
        let parsed = value
            .parse()
            .map_err(|e| FjordError::BadArguments(format!("--{key} {value}: {e}")))?;
        if let Some(n) = canonical_number(value) {
            self.usage.lock().numbers.insert(key.to_string(), n);
        }
        Ok(parsed)
    }

    /// Fails for arguments the job did not read (unknown or misspelled) and for flags given
    /// without the value the job reads them as. Call after the job built its graph.
    ///
    /// # Errors
    /// [`FjordError::BadArguments`] naming the argument and the arguments the job reads.
    pub fn check_used(&self, job: &str) -> Result<()> {
        let usage = self.usage.lock();
        if let Some(key) = usage.missing_value.iter().next() {
            return Err(FjordError::BadArguments(format!(
                "--{key} needs a value: --{key} <value>"
            )));
        }
        let unknown: Vec<&str> = self
            .values
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !usage.read.contains(*k))
            .collect();
        if !unknown.is_empty() {
            let known: Vec<String> = usage.read.iter().map(|k| format!("--{k}")).collect();
            let takes = if known.is_empty() {
                "takes no arguments".to_string()
            } else {
                format!("reads {}", known.join(", "))
            };
            return Err(FjordError::BadArguments(format!(
                "job '{job}' does not take {}; it {takes}",
                unknown
                    .iter()
                    .map(|k| format!("--{k}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            )));
        }
        Ok(())
    }

    /// The arguments spelled canonically, for identities derived from them (job IDs): `--key
    /// value` pairs in the order given, numbers the job parsed in one spelling (`--rate
    /// 10000.0`, `--rate=1e4` and `--rate 10000` are the same). Call after the job built its
    /// graph.
    pub fn canonical(&self) -> Vec<String> {
        let usage = self.usage.lock();
        let mut out = Vec::with_capacity(self.values.len() * 2);
        for (key, value) in &self.values {
            out.push(format!("--{key}"));
            if let Some(v) = value {
                out.push(usage.numbers.get(key).cloned().unwrap_or_else(|| v.clone()));
            }
        }
        out
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

    /// Builds the named job on `env`, then rejects arguments the job did not read (see
    /// [`JobArgs::check_used`]).
    pub fn build(
        &self,
        name: &str,
        env: &StreamExecutionEnvironment,
        args: &JobArgs,
    ) -> Result<()> {
        (self.get(name)?.build)(env, args)?;
        args.check_used(name)
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
        assert!(a.has("verbose"));
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
    fn unread_and_valueless_arguments_are_rejected_after_the_build() {
        let a = JobArgs::parse(["--rate", "5", "--rte", "7"]).unwrap();
        a.get_parsed("rate", 1.0f64).unwrap();
        a.get("count");
        let err = a.check_used("counting").unwrap_err().to_string();
        assert!(
            err.contains("does not take --rte") && err.contains("reads --count, --rate"),
            "{err}"
        );
        let a = JobArgs::parse(["--output"]).unwrap();
        assert_eq!(a.get("output"), None);
        let err = a.check_used("wordcount").unwrap_err().to_string();
        assert!(err.contains("--output needs a value"), "{err}");
        let a = JobArgs::parse(["--verbose"]).unwrap();
        assert!(a.get_parsed("verbose", false).unwrap());
        a.check_used("x").unwrap();
    }

    #[test]
    fn non_finite_numbers_and_repeated_keys_are_rejected() {
        for bad in ["NaN", "inf", "-Infinity"] {
            let a = JobArgs::parse(["--rate", bad]).unwrap();
            let err = a.get_parsed("rate", 1.0f64).unwrap_err().to_string();
            assert!(err.contains("not a finite number"), "{err}");
        }
        let err = JobArgs::parse(["--n", "1", "--n", "2"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--n is given twice"), "{err}");
    }

    #[test]
    fn canonical_arguments_do_not_depend_on_how_numbers_are_spelled() {
        let canonical = |raw: &[&str]| {
            let a = JobArgs::parse(raw.iter().copied()).unwrap();
            a.get_parsed("rate", 0.0f64).unwrap();
            a.get("name");
            a.canonical()
        };
        let want = vec!["--rate", "10000", "--name", "007"];
        assert_eq!(canonical(&["--rate", "10000", "--name", "007"]), want);
        assert_eq!(canonical(&["--rate", "10000.0", "--name", "007"]), want);
        assert_eq!(canonical(&["--rate=1e4", "--name=007"]), want);
        assert_eq!(canonical(&["--rate", "2.50", "--name", "007"])[1], "2.5");
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
