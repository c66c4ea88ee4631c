//! [`ScriptServer`]: one server of a test (Redis, RabbitMQ, ActiveMQ, Cassandra, OpenSearch,
//! kinesalite, HDFS) in a directory of its own, driven through its `scripts/infra/<name>.sh`.
//!
//! Those scripts share one command line: `<name>.sh start DIR` chooses free loopback ports
//! on the first start (a later start in the same DIR reuses ports and data), prints
//! `KEY=value` lines (`REDIS_URL=...`), and watches `FJORD_E2E_OWNER_PID` so the server stops
//! when the test binary is gone, even killed; `stop DIR [--kill]` stops it keeping its data;
//! `down DIR` stops it and releases its ports; some have tool subcommands taking DIR first
//! (`rabbitmq.sh ctl DIR ...`, `activemq.sh tool DIR ...`, `hdfs.sh fs DIR ...`).

use crate::cluster::infra_dir;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A server started by `scripts/infra/<script>` in its own directory; `down` and its directory
/// removed on drop (unless [`leak`](Self::leak)ed for a binary-wide shared server).
#[derive(Debug)]
pub struct ScriptServer {
    script: String,
    dir: PathBuf,
    vars: BTreeMap<String, String>,
    owned: bool,
}

impl ScriptServer {
    /// Starts a server with `scripts/infra/<script> start DIR` in `dir` (emptied first, after
    /// a `down` of whatever an earlier run left there).
    ///
    /// # Errors
    /// [`Error::Script`] naming the script, its exit code (3: the server is not installed;
    /// run `scripts/infra/install.sh` or `scripts/install-deps.sh`) and its output.
    pub fn start(script: &str, dir: impl Into<PathBuf>) -> Result<Self> {
        Self::start_with(script, dir, &[])
    }

    /// [`start`](Self::start) with extra environment variables for the script (settings such
    /// as `OPENSEARCH_EXTRA_SETTINGS`).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with(script: &str, dir: impl Into<PathBuf>, env: &[(&str, &str)]) -> Result<Self> {
        let dir = dir.into();
        let mut server = ScriptServer {
            script: script.to_string(),
            dir,
            vars: BTreeMap::new(),
            owned: true,
        };
        if server.dir.exists() {
            let _ = server.command("down", &[]).output();
            let _ = std::fs::remove_dir_all(&server.dir);
        }
        let mut command = server.command("start", &[]);
        command.envs(env.iter().copied());
        let out = server.finish("start", command, None)?;
        server.vars = parse_vars(&out);
        Ok(server)
    }

    /// A `KEY=value` the start printed (`REDIS_URL`, `AMQP_URL`, `HDFS_URL`, ...).
    ///
    /// # Errors
    /// [`Error::MissingSetting`] when the script printed no such line.
    pub fn var(&self, key: &str) -> Result<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::MissingSetting {
                path: infra_dir().join(&self.script),
                key: key.to_string(),
            })
    }

    /// The server's directory (data, logs, ports).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `<script> <sub> DIR <args...>` and returns its standard output.
    ///
    /// # Errors
    /// [`Error::Script`] when it fails.
    pub fn run(&self, sub: &str, args: &[&str]) -> Result<String> {
        self.finish(sub, self.command(sub, args), None)
    }

    /// [`run`](Self::run) with `input` on its standard input (a tool reading messages).
    ///
    /// # Errors
    /// [`Error::Script`] when it fails.
    pub fn run_with_input(&self, sub: &str, args: &[&str], input: &str) -> Result<String> {
        self.finish(sub, self.command(sub, args), Some(input))
    }

    /// Stops the server (`--kill`: SIGKILL at once); its data and ports stay.
    ///
    /// # Errors
    /// [`Error::Script`] when the script fails.
    pub fn stop(&self, kill: bool) -> Result<()> {
        let args: &[&str] = if kill { &["--kill"] } else { &[] };
        self.run("stop", args).map(drop)
    }

    /// Starts it again on the same ports with the same data.
    ///
    /// # Errors
    /// [`Error::Script`] when the script fails.
    pub fn restart(&self) -> Result<()> {
        self.run("start", &[]).map(drop)
    }

    /// Keeps the server running when this value is dropped (a server shared by the tests of a
    /// binary, in a `static`; the script's watchdog stops it with the binary).
    pub fn leak(mut self) -> Self {
        self.owned = false;
        self
    }

    fn command(&self, sub: &str, args: &[&str]) -> Command {
        let mut command = Command::new(infra_dir().join(&self.script));
        command
            .arg(sub)
            .arg(&self.dir)
            .args(args)
            .env("FJORD_E2E_OWNER_PID", std::process::id().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn finish(&self, sub: &str, mut command: Command, input: Option<&str>) -> Result<String> {
        command.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let program = format!("scripts/infra/{} {sub}", self.script);
        let spawn = |source| Error::Spawn {
            program: program.clone(),
            source,
        };
        let mut child = command.spawn().map_err(spawn)?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).map_err(spawn)?;
        }
        let out = child.wait_with_output().map_err(spawn)?;
        if !out.status.success() {
            return Err(Error::Script {
                script: self.script.clone(),
                action: sub.to_string(),
                dir: self.dir.clone(),
                code: out.status.code(),
                output: crate::cluster::tail(&String::from_utf8_lossy(&out.stderr), 30),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The `KEY=value` lines of a script's output (keys in capitals, digits and `_`).
fn parse_vars(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        if self.owned {
            let _ = self.command("down", &[]).output();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_vars;

    #[test]
    fn only_key_value_lines_are_settings() {
        let vars = parse_vars("starting...\nREDIS_URL=redis://127.0.0.1:1/\nurl=x\nA_1=b=c\n");
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            vec![
                ("A_1".to_string(), "b=c".to_string()),
                ("REDIS_URL".to_string(), "redis://127.0.0.1:1/".to_string())
            ]
        );
    }
}
