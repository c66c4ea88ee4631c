//! Protocol versions and the compatibility rule between a JobManager and a TaskManager.
//!
//! The rule: the major versions must be equal, and the TaskManager's minor version must be at
//! least [`OLDEST_SUPPORTED_MINOR`]. Minor versions only add fields, messages and RPCs (which
//! protobuf lets either side ignore), so a TaskManager with a newer minor version is accepted.

use crate::ProtoError;
use crate::v1::{ProtocolVersion, RegisterTaskManagerRequest};

/// The control-protocol version this build speaks.
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion { major: 1, minor: 5 };

/// The oldest minor version (of [`PROTOCOL_VERSION`]'s major) this build still accepts.
/// 1.1 added attempt deployment (DeployAttempt, SendTaskCommand, AttemptEnded); a 1.0
/// TaskManager cannot run tasks, so it is refused. 1.2 added task metrics to heartbeats and
/// `AttemptEnded` (a 1.1 TaskManager is accepted; its tasks' metrics show as zeros). 1.3
/// added process incarnations to registrations and heartbeats and checksums to state handles
/// (a 1.2 TaskManager is accepted; its duplicates are not detected, its files not checked).
/// 1.4 added the process's memory to heartbeats (a 1.3 TaskManager is accepted; its memory
/// shows as unknown). 1.5 added the cluster ID to registrations and a retryable refusal (a
/// 1.4 TaskManager is accepted by a JobManager without `cluster.id`, and refused, retryably, by
/// one with it; a 1.4 JobManager ignores the cluster ID).
pub const OLDEST_SUPPORTED_MINOR: u32 = 1;

fn show(v: &ProtocolVersion) -> String {
    format!("{}.{}", v.major, v.minor)
}

/// Decides whether this JobManager (speaking `ours`, accepting minor versions from
/// `oldest_minor`) may register the TaskManager of `request`.
///
/// # Errors
/// [`ProtoError::IncompatibleVersion`] naming both versions and what to do, or
/// [`ProtoError::MissingVersion`] when the request carries none.
pub fn check_compatible(
    ours: &ProtocolVersion,
    oldest_minor: u32,
    request: &RegisterTaskManagerRequest,
) -> Result<(), ProtoError> {
    let Some(theirs) = request.protocol_version.as_ref() else {
        return Err(ProtoError::MissingVersion {
            task_manager: request.task_manager_id.clone(),
        });
    };
    if theirs.major == ours.major && theirs.minor >= oldest_minor {
        return Ok(());
    }
    Err(ProtoError::IncompatibleVersion {
        task_manager: request.task_manager_id.clone(),
        binary_version: if request.binary_version.is_empty() {
            "unknown version".into()
        } else {
            request.binary_version.clone()
        },
        theirs: show(theirs),
        ours: show(ours),
        accepted: format!("{}.{} to {}.x", ours.major, oldest_minor, ours.major),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Option<(u32, u32)>) -> RegisterTaskManagerRequest {
        RegisterTaskManagerRequest {
            task_manager_id: "tm-1".into(),
            protocol_version: version.map(|(major, minor)| ProtocolVersion { major, minor }),
            binary_version: "0.9.0".into(),
            ..Default::default()
        }
    }

    #[test]
    fn compatibility_table() {
        let ours = ProtocolVersion { major: 1, minor: 3 };
        // (TaskManager version, oldest accepted minor, accepted?)
        let cases = [
            ((1, 3), 0, true),
            ((1, 0), 0, true),
            ((1, 7), 0, true),  // newer minor: only additions, accepted
            ((1, 1), 2, false), // older than the oldest supported minor
            ((1, 2), 2, true),
            ((2, 0), 0, false),
            ((0, 9), 0, false),
        ];
        for ((major, minor), oldest, ok) in cases {
            let result = check_compatible(&ours, oldest, &request(Some((major, minor))));
            assert_eq!(
                result.is_ok(),
                ok,
                "{major}.{minor} with oldest {oldest}: {result:?}"
            );
        }
    }

    #[test]
    fn the_refusal_names_both_versions_and_the_fix() {
        let err = check_compatible(
            &PROTOCOL_VERSION,
            OLDEST_SUPPORTED_MINOR,
            &request(Some((2, 0))),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("'tm-1'"), "{err}");
        assert!(err.contains("fjord 0.9.0"), "{err}");
        assert!(err.contains("speaks control protocol 2.0"), "{err}");
        // Named from the constants, so the next protocol version does not break the test.
        let ours = format!(
            "this JobManager speaks {}.{} and accepts {}.{OLDEST_SUPPORTED_MINOR} to {}.x",
            PROTOCOL_VERSION.major,
            PROTOCOL_VERSION.minor,
            PROTOCOL_VERSION.major,
            PROTOCOL_VERSION.major
        );
        assert!(err.contains(&ours), "{err}");
        assert!(err.contains("same image"), "{err}");
    }

    #[test]
    fn a_registration_without_a_version_is_refused() {
        let err = check_compatible(&PROTOCOL_VERSION, OLDEST_SUPPORTED_MINOR, &request(None))
            .unwrap_err();
        assert!(matches!(err, ProtoError::MissingVersion { .. }));
        assert!(err.to_string().contains("no protocol version"));
    }

    #[test]
    fn this_build_accepts_itself() {
        let mut r = request(Some((PROTOCOL_VERSION.major, PROTOCOL_VERSION.minor)));
        r.binary_version = env!("CARGO_PKG_VERSION").into();
        assert!(check_compatible(&PROTOCOL_VERSION, OLDEST_SUPPORTED_MINOR, &r).is_ok());
    }
}
