//! Test seam, not part of the API: holds writes to storage so a test can prove that snapshot
//! uploads are asynchronous (records keep flowing while an upload cannot finish).
//!
//! A [`PutHold`] makes every blocking [`SnapshotStore::put`](super::SnapshotStore::put) whose
//! full location (`<store URL>/<path>`) contains its pattern wait until the hold is released
//! (or dropped). Without holds a put costs one relaxed atomic load more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

struct Hold {
    pattern: String,
    /// `(released, locations of the puts that waited so far)`.
    state: Mutex<(bool, Vec<String>)>,
    changed: Condvar,
}

static ANY: AtomicBool = AtomicBool::new(false);
static HOLDS: Mutex<Vec<Arc<Hold>>> = Mutex::new(Vec::new());

/// Holds puts whose location contains a pattern until released; releases on drop.
pub struct PutHold(Arc<Hold>);

/// Starts holding every put whose `<store URL>/<path>` contains `pattern`.
pub fn hold_puts(pattern: &str) -> PutHold {
    let hold = Arc::new(Hold {
        pattern: pattern.to_string(),
        state: Mutex::new((false, Vec::new())),
        changed: Condvar::new(),
    });
    let mut holds = HOLDS.lock().unwrap_or_else(|e| e.into_inner());
    holds.push(hold.clone());
    ANY.store(true, Ordering::Release);
    PutHold(hold)
}

impl PutHold {
    /// Waits up to `timeout` until at least `count` puts are being (or were) held; returns
    /// their locations so far (fewer than `count` when the time ran out).
    pub fn wait_held(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.1.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .0
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.1.clone()
    }

    /// Lets the held puts (and later matching ones) go on.
    pub fn release(&self) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = true;
        self.0.changed.notify_all();
    }
}

impl Drop for PutHold {
    fn drop(&mut self) {
        self.release();
        let mut holds = HOLDS.lock().unwrap_or_else(|e| e.into_inner());
        holds.retain(|h| !Arc::ptr_eq(h, &self.0));
        ANY.store(!holds.is_empty(), Ordering::Release);
    }
}

/// Called by `SnapshotStore::put` before writing: waits while a hold matches `location`.
pub(crate) fn before_put(url: &str, path: &str) {
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    let location = format!("{url}/{path}");
    let location = location.as_str();
    let matching: Vec<Arc<Hold>> = HOLDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|h| location.contains(&h.pattern))
        .cloned()
        .collect();
    for hold in matching {
        let mut state = hold.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 {
            continue;
        }
        state.1.push(location.to_string());
        hold.changed.notify_all();
        while !state.0 {
            state = hold.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}
