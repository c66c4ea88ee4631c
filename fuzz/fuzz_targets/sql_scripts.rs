//! SQL scripts as a session JobManager receives them over REST (and the operator from
//! `spec.job.sql`): parsed and planned. An error is fine; a panic or a hang is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(script) = std::str::from_utf8(data) {
        let _ = fjord_sql::plan_portable(script);
    }
});
