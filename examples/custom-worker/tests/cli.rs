//! The user's binary runs its own job through the worker entry point, and says which
//! fjord-worker feature a capability it was built without needs.

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

/// This binary leaves fjord-worker's `sql` and `manifests` features out: their commands are
/// still there and fail as bad usage, naming the feature to enable. A build that unifies
/// features (`cargo test --workspace --all-features`, as the suite runs) has them in: then
/// the commands get past the feature check and refuse the input itself (also exit 2).
#[test]
fn capabilities_built_without_name_their_feature() {
    let bin = env!("CARGO_BIN_EXE_my-worker");
    let dir = std::env::temp_dir().join(format!("my-worker-features-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("job.sql");
    std::fs::write(&script, "SELECT 1;\n").unwrap();
    let manifest = dir.join("job.yaml");
    std::fs::write(&manifest, "kind: StreamJob\n").unwrap();

    let sql = Command::new(bin)
        .arg("sql")
        .arg("-f")
        .arg(&script)
        .output()
        .unwrap();
    let run = Command::new(bin)
        .arg("run")
        .arg(&manifest)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    for (out, feature) in [(sql, "sql"), (run, "manifests")] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let named = format!("`{feature}` feature");
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        if fjord_worker::built_in(feature) {
            // Past the feature check, the file itself is refused (no sink; no StreamJob).
            assert!(!stderr.contains(&named), "built with {feature}: {stderr}");
            assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
        } else {
            assert!(stderr.contains(&named), "{stderr}");
            assert!(stderr.contains("fjord-worker"), "{stderr}");
        }
    }
}
