//! Failure injection and storage helpers shared by the checkpoint tests.
#![allow(dead_code)]

use fjord::{BoxError, MapFunction, RuntimeContext};

/// Passes records through, and panics in execution attempt `a` when this subtask has seen
/// `points[a]` records in that attempt (no failure in attempts beyond the list).
#[derive(Clone)]
pub struct FailAt {
    points: Vec<u64>,
    attempt: usize,
    seen: u64,
}

impl FailAt {
    /// Fails once, in the first attempt, at record `at`.
    pub fn once(at: u64) -> Self {
        Self::at(vec![at])
    }

    /// Fails in attempt `a` at record `points[a]`.
    pub fn at(points: Vec<u64>) -> Self {
        FailAt {
            points,
            attempt: 0,
            seen: 0,
        }
    }
}

impl<T: Send + 'static> MapFunction<T, T> for FailAt {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.attempt = ctx.attempt_number as usize;
        self.seen = 0;
        Ok(())
    }

    fn map(&mut self, v: T) -> Result<T, BoxError> {
        self.seen += 1;
        if self.points.get(self.attempt) == Some(&self.seen) {
            panic!(
                "injected failure in attempt {} at record {}",
                self.attempt, self.seen
            );
        }
        Ok(v)
    }
}

/// The `file://` URL of a directory.
pub fn file_url(dir: &std::path::Path) -> String {
    format!("file://{}", dir.display())
}
