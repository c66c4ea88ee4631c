//! The user's binary runs its own job through the worker entry point.

use std::process::Command;

#[test]
fn the_custom_binary_lists_and_runs_its_jobs() {
    let bin = env!("CARGO_BIN_EXE_my-worker");
    let list = Command::new(bin).arg("list").output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("temperature-alerts"));

    let out = Command::new(bin)
        .args(["run", "-p", "1", "temperature-alerts", "--threshold", "35"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    // Readings are (i * 7) % 40, so only 36..=39 pass; the max per sensor ends at 39 for all three.
    for s in 0..3 {
        assert!(
            stdout.lines().any(|l| l == format!("(sensor-{s},39)")),
            "{stdout}"
        );
    }
    assert!(stdout.lines().all(|l| {
        l.rsplit(',')
            .next()
            .unwrap()
            .trim_end_matches(')')
            .parse::<i64>()
            .unwrap()
            > 35
    }));

    let bad = Command::new(bin)
        .args(["run", "temperature-alerts", "--threshold", "900"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a plausible temperature"));
}
