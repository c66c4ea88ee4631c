//! What connector tests share to judge a job's output: bounded waits, scratch directories,
//! the committed lines of Fjord's exactly-once file sink, and a checkpointed environment that
//! restarts after failures.

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::RestartStrategy;
use fjord::sinks::ExactlyOnceFileSink;
use fjord::storage::StorageOptions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Waits (polling every 100 ms) until `done` holds, at most `limit`; panics naming `what`
/// otherwise. Nothing is asserted about how long it took: the limit is only a bound.
pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An empty directory path `fjord-<prefix>-<name>-<pid>` under the system's temporary
/// directory (anything left there by an earlier run is removed).
pub fn scratch_dir(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fjord-{prefix}-{name}-{}", std::process::id()));
    if d.exists() {
        std::fs::remove_dir_all(&d).unwrap_or_else(|e| panic!("cannot clear {}: {e}", d.display()));
    }
    d
}

/// The directory `<base>/<name>-shared-<pid>` of the server a test binary shares between its
/// tests. The pid keeps two binaries of one crate apart: the watchdog of the binary that ran
/// before stops its server a moment after that binary exits, and with one directory for both it
/// stopped the next binary's server mid-run. Directories of binaries that are gone, whose
/// servers are stopped too (no live pid under `pids/`), are removed.
pub fn shared_server_dir(base: &Path, name: &str) -> PathBuf {
    let prefix = format!("{name}-shared-");
    let alive = |pid: &str| Path::new(&format!("/proc/{}", pid.trim())).exists();
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let file = e.file_name();
            let Some(owner) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                continue;
            };
            let servers_alive = std::fs::read_dir(e.path().join("pids"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|p| std::fs::read_to_string(p.path()).is_ok_and(|pid| alive(&pid)));
            if owner.parse::<u32>().is_ok() && !alive(owner) && !servers_alive {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    base.join(format!("{prefix}{}", std::process::id()))
}

/// The lines an [`ExactlyOnceFileSink`] committed under `dir` (none if it committed nothing).
pub fn committed(dir: &Path) -> Vec<String> {
    let url = format!("file://{}", dir.display());
    ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default()).unwrap_or_default()
}

/// Occurrences of each line.
pub fn counts(lines: &[String]) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for l in lines {
        *c.entry(l.clone()).or_default() += 1;
    }
    c
}

/// `n` messages with ids `<prefix>-<i>` and bodies `<i>`.
pub fn numbered_messages(prefix: &str, n: u64) -> Vec<(Option<String>, String)> {
    (0..n)
        .map(|i| (Some(format!("{prefix}-{i}")), i.to_string()))
        .collect()
}

/// An environment at parallelism 1 that checkpoints every 100 ms into `dir/checkpoints` and
/// restarts up to 1000 times, 200 ms apart.
pub fn checkpointed_env(dir: &Path) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_millis(100));
    let storage = dir.join("checkpoints");
    env.checkpoint_config(|c| c.storage = format!("file://{}", storage.display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 1000,
        delay: Duration::from_millis(200),
    });
    env
}

/// The ` ```sql ` blocks of the doc at `path` (relative to the repository root), in order: the
/// scripts a connector page shows, which its tests run verbatim.
pub fn sql_blocks_of(path: &str) -> Vec<String> {
    code_blocks_of(path, "sql")
}

/// The ` ```<lang> ` blocks of the doc at `path` (relative to the repository root), in order.
pub fn code_blocks_of(path: &str, lang: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = std::fs::read_to_string(root.join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    code_blocks_in(&docs, lang)
}

/// The ` ```<lang> ` blocks of the Markdown text `docs`, in order.
pub fn code_blocks_in(docs: &str, lang: &str) -> Vec<String> {
    docs.split(&format!("```{lang}\n"))
        .skip(1)
        .map(|b| b[..b.find("```").expect("a closed code block")].to_string())
        .collect()
}

/// Whether the docs example `block` is code of `source` (a test file's `include_str!`) line
/// for line, indentation and blank lines aside: the docs show code that runs, even where
/// rustfmt indents the test's copy differently.
pub fn is_code_of(block: &str, source: &str) -> bool {
    let normal = |s: &str| -> String {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    normal(source).contains(&normal(block))
}

/// Every line of every file in `dir` except hidden ones (a SQL filesystem sink's output; none
/// if `dir` does not exist).
pub fn lines_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        out.extend(text.lines().map(str::to_string));
    }
    out
}

/// A map that fails once, at its `at`-th record of the first attempt (attempt 0), and passes
/// records through otherwise: a job failure injected mid-stream.
#[derive(Clone)]
pub struct FailOnce {
    at: u64,
    attempt: u32,
    seen: u64,
}

impl FailOnce {
    /// Fails at the `at`-th record of the first attempt.
    pub fn at(at: u64) -> Self {
        FailOnce {
            at,
            attempt: 0,
            seen: 0,
        }
    }
}

impl<T: fjord::Data> fjord::MapFunction<T, T> for FailOnce {
    fn open(&mut self, ctx: &fjord::RuntimeContext) -> Result<(), fjord::BoxError> {
        self.attempt = ctx.attempt_number;
        Ok(())
    }
    fn map(&mut self, v: T) -> Result<T, fjord::BoxError> {
        self.seen += 1;
        if self.attempt == 0 && self.seen == self.at {
            return Err("injected failure".into());
        }
        Ok(v)
    }
}

/// Every running count `(key,count)` of a keyed sum of ones over `records` numbers spread
/// over `keys` keys (record `i` has key `i % keys`), sorted.
pub fn running_counts(records: u64, keys: u64) -> Vec<String> {
    let mut v: Vec<String> = (0..keys)
        .flat_map(|k| {
            let n = records / keys + u64::from(k < records % keys);
            (1..=n).map(move |c| format!("({k},{c})"))
        })
        .collect();
    v.sort();
    v
}
