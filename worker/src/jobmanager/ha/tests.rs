//! Unit tests of leader election over the file lease (real files in a temporary directory).

use super::file::FileLease;
use super::*;

const LEASE: Duration = Duration::from_millis(300);

fn contender(dir: &std::path::Path, name: &str) -> FileLease {
    FileLease::new(dir, name, &format!("{name}:6123"), LEASE).unwrap()
}

#[test]
fn the_first_contender_takes_epoch_1_and_a_second_waits_while_it_renews() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (contender(dir.path(), "a"), contender(dir.path(), "b"));
    assert_eq!(a.try_acquire().unwrap(), Some(1));
    // b sees a's term, then a renews: b starts watching again and never takes it.
    assert_eq!(b.try_acquire().unwrap(), None);
    for _ in 0..3 {
        std::thread::sleep(LEASE + Duration::from_millis(50));
        assert!(a.renew().unwrap(), "a still holds the lease");
        assert_eq!(b.try_acquire().unwrap(), None, "a renewed in between");
    }
    let current = a.current().unwrap().unwrap();
    assert_eq!((current.holder.as_str(), current.epoch), ("a", 1));
    assert_eq!(current.address, "a:6123");
}

#[test]
fn an_unrenewed_lease_is_taken_with_the_next_epoch_and_the_old_holder_learns_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (contender(dir.path(), "a"), contender(dir.path(), "b"));
    assert_eq!(a.try_acquire().unwrap(), Some(1));
    assert_eq!(b.try_acquire().unwrap(), None);
    std::thread::sleep(LEASE + Duration::from_millis(50));
    assert_eq!(b.try_acquire().unwrap(), Some(2), "a did not renew");
    assert!(!a.renew().unwrap(), "a sees the newer term and has lost");
    assert!(b.renew().unwrap());
    // a, now a contender again, waits for b's lease.
    let mut a2 = contender(dir.path(), "a2");
    assert_eq!(a2.try_acquire().unwrap(), None);
}

#[test]
fn a_released_lease_is_taken_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (contender(dir.path(), "a"), contender(dir.path(), "b"));
    assert_eq!(a.try_acquire().unwrap(), Some(1));
    a.release().unwrap();
    assert_eq!(b.try_acquire().unwrap(), Some(2));
}

#[test]
fn of_two_contenders_for_an_expired_lease_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = contender(dir.path(), "a");
    assert_eq!(a.try_acquire().unwrap(), Some(1));
    a.release().unwrap();
    let winners: Vec<Option<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let dir = dir.path().to_path_buf();
                s.spawn(move || contender(&dir, &format!("c{i}")).try_acquire().unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        winners.iter().filter(|w| w.is_some()).count(),
        1,
        "{winners:?}"
    );
    assert!(winners.contains(&Some(2)));
}

fn file_config(dir: &std::path::Path, holder: &str) -> HaConfig {
    HaConfig {
        mode: HaMode::File {
            dir: dir.to_path_buf(),
        },
        lease_duration: LEASE,
        renew_deadline: Duration::from_millis(200),
        retry_period: Duration::from_millis(20),
        holder: holder.into(),
    }
}

#[test]
fn a_leader_that_is_taken_over_fails_its_fence_and_hears_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = file_config(dir.path(), "a");
    let (lost_tx, lost_rx) = std::sync::mpsc::channel();
    let leader = acquire(&config, "a:6123", move |why| {
        let _ = lost_tx.send(why);
    })
    .unwrap();
    assert_eq!(leader.epoch(), 1);
    assert_eq!(leader.fence().check(), Ok(1));
    // Someone takes the next term by hand (as a contender that saw the lease expire would).
    let b = contender(dir.path(), "b");
    let record = b.current().unwrap().unwrap();
    std::fs::write(
        dir.path().join(format!("{}{:020}", file::PREFIX, 2)),
        serde_json::to_vec(&file::LeaderRecord {
            holder: "b".into(),
            epoch: 2,
            address: "b:6123".into(),
            renewals: 0,
            released: false,
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record.epoch, 1);
    let why = lost_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(why.contains("another JobManager"), "{why}");
    assert!(leader.check().unwrap_err().contains("no longer the leader"));
    assert!(leader.fence().check().is_err());
}

#[test]
fn a_standby_acquires_once_the_leader_releases_and_its_epoch_fences_higher() {
    let dir = tempfile::tempdir().unwrap();
    let first = acquire(&file_config(dir.path(), "a"), "a:6123", |_| {}).unwrap();
    let standby = {
        let config = file_config(dir.path(), "b");
        std::thread::spawn(move || acquire(&config, "b:6123", |_| {}).unwrap())
    };
    let first_tm_epoch = first.task_manager_epoch();
    first.release();
    let second = standby.join().unwrap();
    assert_eq!(second.epoch(), 2);
    assert!(second.task_manager_epoch() > first_tm_epoch);
    assert_eq!(second.check(), Ok(2));
    second.release();
}

fn resolve(pairs: &[(&str, &str)]) -> Result<Option<HaConfig>, WorkerError> {
    let file: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    HaConfig::resolve(&HaArgs::default(), &file)
}

#[test]
fn configuration_keys_and_their_checks() {
    assert_eq!(resolve(&[]).unwrap(), None);
    assert_eq!(
        resolve(&[("high-availability.type", "none")]).unwrap(),
        None
    );
    let c = resolve(&[
        ("high-availability.type", "file"),
        ("high-availability.storage-dir", "file:///shared/ha"),
        ("high-availability.leader-election.lease-duration", "6s"),
        ("high-availability.leader-election.renew-deadline", "4s"),
        ("high-availability.leader-election.retry-period", "500ms"),
        ("high-availability.holder-id", "jm-0"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        c.mode,
        HaMode::File {
            dir: "/shared/ha".into()
        }
    );
    assert_eq!(
        (c.lease_duration, c.renew_deadline, c.retry_period),
        (
            Duration::from_secs(6),
            Duration::from_secs(4),
            Duration::from_millis(500)
        )
    );
    assert_eq!(c.holder, "jm-0");
    let err = resolve(&[("high-availability.type", "file")]).unwrap_err();
    assert!(err.to_string().contains("storage-dir"), "{err}");
    let err = resolve(&[
        ("high-availability.type", "file"),
        ("high-availability.storage-dir", "/x"),
        ("high-availability.leader-election.renew-deadline", "15s"),
    ])
    .unwrap_err();
    assert!(
        err.to_string().contains("shorter than the lease duration"),
        "{err}"
    );
    let err = resolve(&[("high-availability.type", "zookeeper")]).unwrap_err();
    assert!(
        err.to_string().contains("none, file or kubernetes"),
        "{err}"
    );
    let c = resolve(&[
        ("high-availability.type", "kubernetes"),
        (
            "high-availability.kubernetes.lease-name",
            "job-jobmanager-leader",
        ),
        ("high-availability.kubernetes.namespace", "ns"),
        (
            "high-availability.kubernetes.leader-label",
            "fjord.dev/jobmanager-leader=true",
        ),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        c.mode,
        HaMode::Kubernetes {
            lease: "job-jobmanager-leader".into(),
            namespace: Some("ns".into()),
            leader_label: Some(("fjord.dev/jobmanager-leader".into(), "true".into())),
        }
    );
}

#[cfg(not(feature = "kubernetes-ha"))]
#[test]
fn kubernetes_ha_without_its_feature_stops_at_start_up_naming_the_feature() {
    let config = resolve(&[
        ("high-availability.type", "kubernetes"),
        ("high-availability.kubernetes.lease-name", "job-leader"),
    ])
    .unwrap()
    .unwrap();
    let err = acquire(&config, "jm:6123", |_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            WorkerError::NotBuiltIn {
                feature: "kubernetes-ha",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("`kubernetes-ha` feature"), "{err}");
}
