//! Rotating a StreamJob's CA without a moment in which a running Pod rejects a peer: the state
//! machine. Pure (no I/O, no clock, no randomness); [`crate::security::ensure`] reads the two
//! Secrets into [`CaState`] and [`LeafState`], asks [`plan`] for one [`Step`] per pass, and
//! performs it, always writing the CA Secret (the record) before the certificate Secret (what
//! the Pods mount).
//!
//! Phases, recorded in annotations of the CA Secret `<name>-ca` so a restarted operator
//! continues where it stopped:
//!
//! 1. **Stable**: `<name>-tls` holds a leaf of the CA and trusts that CA alone. When the CA
//!    expires within [`Timing::ca_renew_before`] (1 year by default): [`Step::StartRotation`]
//!    issues the next CA (kept in `<name>-ca` beside the current one) and publishes the bundle
//!    (both CAs) with the unchanged leaf → **Trusting**.
//! 2. **Trusting** since `t`: every Pod gets the bundle (the kubelet updates mounted Secrets
//!    within a minute or two; the processes reload within seconds). After
//!    [`Timing::propagation`] (10 minutes by default): [`Step::SwitchLeaf`] publishes a leaf of
//!    the next CA, still with the bundle → **Switched**. A Pod that already has it and one that
//!    does not yet trust each other, since both trust both CAs.
//! 3. **Switched** since `t`: after [`Timing::propagation`] every Pod presents the new leaf.
//!    [`Step::DropOldCa`] makes the next CA the CA and publishes the new CA alone → **Stable**.
//!    A Pod still on the bundle accepts the new CA's leaves, and no Pod presents an old one.
//!
//! In Trusting and Switched, a certificate Secret that is not what the phase wants (the
//! operator stopped between its two writes, the Secret was deleted, the leaf is due) is
//! published again and the wait starts over ([`Step::Republish`]), so the wait always counts
//! from the moment the Pods could see the files.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// A CA: its certificate, key (PEM) and expiry.
#[derive(Clone, PartialEq, Eq)]
pub struct Ca {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// The end of its validity.
    pub not_after: Timestamp,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Ca")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Where a rotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// One CA; no rotation under way.
    Stable,
    /// The bundle (current and next CA) was published at `since`, with a leaf of the current
    /// CA.
    Trusting {
        /// When the bundle was published.
        since: Timestamp,
    },
    /// A leaf of the next CA was published at `since`, with the bundle.
    Switched {
        /// When the new leaf was published.
        since: Timestamp,
    },
}

/// What the CA Secret records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaState {
    /// The CA in use (signing the leaf while Stable and Trusting).
    pub current: Ca,
    /// The CA being rotated to (always present outside Stable).
    pub next: Option<Ca>,
    /// Where the rotation stands.
    pub phase: Phase,
    /// The last rotation request (the value of the owner's `fjord.dev/rotate-ca` annotation)
    /// this CA has answered: a rotation starts when the owner shows another one.
    pub request: Option<String>,
}

/// What the certificate Secret holds, as far as the rotation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafState {
    /// The leaf's expiry (`None`: missing or unreadable annotation).
    pub not_after: Option<Timestamp>,
    /// The `ca.crt` it publishes.
    pub bundle: Option<String>,
    /// The fingerprint ([`fingerprint`]) of the CA that signed the leaf, if recorded.
    pub issuer: Option<String>,
    /// Both `tls.crt` and `tls.key` are present.
    pub complete: bool,
}

/// The thresholds of the rotation (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A CA is rotated when it expires within this time.
    pub ca_renew_before: Duration,
    /// How long a published Secret is given to reach every Pod before the next step.
    pub propagation: Duration,
    /// A leaf is re-issued when it expires within this time.
    pub leaf_renew_before: Duration,
}

/// A CA is rotated when it expires within a year (of its ten).
pub const CA_RENEW_BEFORE: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long a step waits for the Pods to see the Secret: the kubelet updates a mounted Secret
/// within its sync period plus its cache's TTL (about a minute each by default); the processes
/// reload within seconds.
pub const PROPAGATION: Duration = Duration::from_secs(10 * 60);

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ca_renew_before: CA_RENEW_BEFORE,
            propagation: PROPAGATION,
            leaf_renew_before: crate::certificates::RENEW_BEFORE,
        }
    }
}

/// Which CA a leaf comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// [`CaState::current`].
    Current,
    /// [`CaState::next`].
    Next,
}

/// What one pass does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Everything is as the phase wants it.
    Nothing,
    /// Stable: (re-)issue the leaf from the current CA, trusting it alone (missing, due,
    /// another CA's).
    IssueLeaf,
    /// Stable, the CA is due: issue the next CA, record Trusting, publish the bundle.
    StartRotation,
    /// Trusting or Switched: publish what the phase wants again and restart its wait.
    Republish,
    /// Trusting, waited: publish a leaf of the next CA, record Switched.
    SwitchLeaf,
    /// Switched, waited: the next CA becomes the CA, published alone; record Stable.
    DropOldCa,
}

/// A short, stable name of a CA certificate (hex of the first 16 bytes of the SHA-256 of its
/// PEM), recorded as the issuer of a leaf.
pub fn fingerprint(cert_pem: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert_pem.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `ca.crt` the certificate Secret publishes in `state`'s phase: the current CA alone when
/// Stable, the current and the next CA during a rotation.
pub fn bundle(state: &CaState) -> String {
    match (&state.phase, &state.next) {
        (Phase::Stable, _) | (_, None) => state.current.cert_pem.clone(),
        (_, Some(next)) => {
            format!(
                "{}\n{}",
                state.current.cert_pem.trim_end(),
                next.cert_pem.trim_end()
            ) + "\n"
        }
    }
}

/// The CA the leaf must come from in `state`'s phase.
pub fn signer(state: &CaState) -> Which {
    match state.phase {
        Phase::Switched { .. } if state.next.is_some() => Which::Next,
        _ => Which::Current,
    }
}

fn due(not_after: Timestamp, now: Timestamp, before: Duration) -> bool {
    crate::certificates::needs_renewal(not_after, now, before)
}

fn waited(since: Timestamp, now: Timestamp, wait: Duration) -> bool {
    let secs = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX);
    now.as_second().saturating_sub(since.as_second()) >= secs
}

/// Whether the published leaf can stay in `state`'s phase: complete, not due, signed by the
/// phase's signer (by the recorded issuer; a Secret from before issuers were recorded counts as
/// signed by the current CA when it publishes that CA alone).
pub fn leaf_fits(
    state: &CaState,
    leaf: Option<&LeafState>,
    now: Timestamp,
    timing: &Timing,
) -> bool {
    let Some(leaf) = leaf else {
        return false;
    };
    let Some(not_after) = leaf.not_after else {
        return false;
    };
    let signer_pem = match (signer(state), &state.next) {
        (Which::Next, Some(next)) => &next.cert_pem,
        _ => &state.current.cert_pem,
    };
    let signed_by_signer = match &leaf.issuer {
        Some(issuer) => *issuer == fingerprint(signer_pem),
        None => {
            signer(state) == Which::Current
                && leaf.bundle.as_deref() == Some(state.current.cert_pem.as_str())
        }
    };
    leaf.complete && !due(not_after, now, timing.leaf_renew_before) && signed_by_signer
}

/// Whether `request` (the owner's rotation request, if any) is one `state` has not answered.
pub fn requested(state: &CaState, request: Option<&str>) -> bool {
    request.is_some_and(|r| !r.is_empty() && state.request.as_deref() != Some(r))
}

/// The one step to take now (see the module documentation); `request` is the owner's rotation
/// request ([`requested`]), which starts a rotation while Stable as a due CA does.
pub fn plan(
    state: &CaState,
    leaf: Option<&LeafState>,
    now: Timestamp,
    timing: &Timing,
    request: Option<&str>,
) -> Step {
    let published = leaf.and_then(|l| l.bundle.as_deref()) == Some(bundle(state).as_str());
    let fits = leaf_fits(state, leaf, now, timing);
    match (state.phase, &state.next) {
        (Phase::Stable, _) | (_, None) => {
            if due(state.current.not_after, now, timing.ca_renew_before)
                || requested(state, request)
            {
                Step::StartRotation
            } else if !(fits && published) {
                Step::IssueLeaf
            } else {
                Step::Nothing
            }
        }
        (Phase::Trusting { since } | Phase::Switched { since }, Some(_)) => {
            if !(fits && published) {
                Step::Republish
            } else if !waited(since, now, timing.propagation) {
                Step::Nothing
            } else if matches!(state.phase, Phase::Trusting { .. }) {
                Step::SwitchLeaf
            } else {
                Step::DropOldCa
            }
        }
    }
}

/// The CA state after `step` (taken at `now`; `new_ca` is the CA [`Step::StartRotation`]
/// issued; `request` the owner's rotation request, answered by any rotation that starts), to
/// record before publishing the certificate Secret. `None`: the record stays.
pub fn record(
    state: &CaState,
    step: Step,
    now: Timestamp,
    new_ca: Option<Ca>,
    request: Option<&str>,
) -> Option<CaState> {
    let mut next = state.clone();
    match step {
        Step::Nothing | Step::IssueLeaf => return None,
        Step::StartRotation => {
            next.next = Some(new_ca?);
            next.phase = Phase::Trusting { since: now };
            if let Some(request) = request.filter(|r| !r.is_empty()) {
                next.request = Some(request.to_string());
            }
        }
        Step::Republish => {
            next.phase = match state.phase {
                Phase::Trusting { .. } => Phase::Trusting { since: now },
                Phase::Switched { .. } => Phase::Switched { since: now },
                Phase::Stable => return None,
            };
        }
        Step::SwitchLeaf => next.phase = Phase::Switched { since: now },
        Step::DropOldCa => {
            next.current = state.next.clone()?;
            next.next = None;
            next.phase = Phase::Stable;
        }
    }
    Some(next)
}

/// How long until the rotation recorded in `state` may take its next step (what is left of
/// the propagation wait), measured at `now`; `None` when no rotation is under way.
pub fn next_step_in(state: &CaState, now: Timestamp, timing: &Timing) -> Option<Duration> {
    let (Phase::Trusting { since } | Phase::Switched { since }) = state.phase else {
        return None;
    };
    let elapsed = now.as_second().saturating_sub(since.as_second()).max(0) as u64;
    Some(
        timing
            .propagation
            .saturating_sub(Duration::from_secs(elapsed)),
    )
}

/// Whether the leaf published after `step` is a new one (else the existing leaf is kept with
/// the new bundle).
pub fn issues_leaf(
    state_after: &CaState,
    step: Step,
    leaf: Option<&LeafState>,
    now: Timestamp,
    timing: &Timing,
) -> bool {
    match step {
        Step::Nothing => false,
        Step::IssueLeaf | Step::SwitchLeaf => true,
        // The leaf of the next CA stays; the bundle shrinks.
        Step::DropOldCa => false,
        Step::StartRotation | Step::Republish => !leaf_fits(state_after, leaf, now, timing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn ca(name: &str, not_after: i64) -> Ca {
        Ca {
            cert_pem: format!("-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n"),
            key_pem: format!("key of {name}"),
            not_after: at(not_after),
        }
    }

    const NOW: i64 = 2_000_000_000;

    fn stable(ca_expires_in: i64) -> CaState {
        CaState {
            current: ca("old", NOW + ca_expires_in),
            next: None,
            phase: Phase::Stable,
            request: None,
        }
    }

    /// The certificate Secret as the operator publishes it for `state`: a fresh leaf of the
    /// phase's signer and the phase's bundle.
    fn published(state: &CaState) -> LeafState {
        let signer_pem = match signer(state) {
            Which::Current => &state.current.cert_pem,
            Which::Next => &state.next.as_ref().unwrap().cert_pem,
        };
        LeafState {
            not_after: Some(at(NOW + 90 * DAY)),
            bundle: Some(bundle(state)),
            issuer: Some(fingerprint(signer_pem)),
            complete: true,
        }
    }

    fn timing() -> Timing {
        Timing::default()
    }

    /// `s` after a rotation started at NOW (for `request`) with a new CA.
    fn started(s: &CaState, request: Option<&str>) -> CaState {
        record(
            s,
            Step::StartRotation,
            at(NOW),
            Some(ca("new", NOW + 3650 * DAY)),
            request,
        )
        .unwrap()
    }

    #[test]
    fn a_stable_ca_far_from_expiry_only_renews_its_leaf() {
        let s = stable(5 * 365 * DAY);
        let leaf = published(&s);
        assert_eq!(
            plan(&s, Some(&leaf), at(NOW), &timing(), None),
            Step::Nothing
        );
        assert_eq!(plan(&s, None, at(NOW), &timing(), None), Step::IssueLeaf);
        let due = LeafState {
            not_after: Some(at(NOW + 10 * DAY)),
            ..leaf.clone()
        };
        assert_eq!(
            plan(&s, Some(&due), at(NOW), &timing(), None),
            Step::IssueLeaf
        );
        let foreign = LeafState {
            issuer: Some(fingerprint("another CA")),
            ..leaf.clone()
        };
        assert_eq!(
            plan(&s, Some(&foreign), at(NOW), &timing(), None),
            Step::IssueLeaf
        );
        // A Secret from before issuers were recorded: its ca.crt says which CA.
        let legacy = LeafState {
            issuer: None,
            ..leaf
        };
        assert_eq!(
            plan(&s, Some(&legacy), at(NOW), &timing(), None),
            Step::Nothing
        );
        assert_eq!(record(&s, Step::IssueLeaf, at(NOW), None, None), None);
    }

    #[test]
    fn a_ca_within_its_renewal_window_starts_a_rotation_that_trusts_both() {
        let s = stable(365 * DAY - 1);
        let leaf = published(&s);
        assert_eq!(
            plan(
                &stable(365 * DAY + 1),
                Some(&leaf),
                at(NOW),
                &timing(),
                None
            ),
            Step::Nothing
        );
        assert_eq!(
            plan(&s, Some(&leaf), at(NOW), &timing(), None),
            Step::StartRotation
        );
        let after = started(&s, None);
        assert_eq!(after.phase, Phase::Trusting { since: at(NOW) });
        assert_eq!(after.current, s.current, "the current CA still signs");
        let b = bundle(&after);
        assert!(b.contains("old") && b.contains("new"), "{b}");
        // The leaf of the old CA stays (not due); only the bundle changes.
        assert!(!issues_leaf(
            &after,
            Step::StartRotation,
            Some(&leaf),
            at(NOW),
            &timing()
        ));
        // Forcing the threshold (tests, or an operator told to rotate early).
        let forced = Timing {
            ca_renew_before: Duration::from_secs(20 * 365 * DAY as u64),
            ..timing()
        };
        assert_eq!(
            plan(&stable(5 * 365 * DAY), Some(&leaf), at(NOW), &forced, None),
            Step::StartRotation
        );
    }

    fn trusting(since: i64) -> CaState {
        CaState {
            current: ca("old", NOW + 300 * DAY),
            next: Some(ca("new", NOW + 3650 * DAY)),
            phase: Phase::Trusting { since: at(since) },
            request: None,
        }
    }

    #[test]
    fn trusting_waits_for_the_bundle_to_reach_the_pods_then_switches_the_leaf() {
        let s = trusting(NOW);
        let leaf = published(&s);
        let wait = PROPAGATION.as_secs() as i64;
        assert_eq!(
            plan(&s, Some(&leaf), at(NOW + wait - 1), &timing(), None),
            Step::Nothing
        );
        assert_eq!(
            plan(&s, Some(&leaf), at(NOW + wait), &timing(), None),
            Step::SwitchLeaf
        );
        let after = record(&s, Step::SwitchLeaf, at(NOW + wait), None, None).unwrap();
        assert_eq!(
            after.phase,
            Phase::Switched {
                since: at(NOW + wait)
            }
        );
        assert_eq!(signer(&after), Which::Next);
        assert_eq!(bundle(&after), bundle(&s), "still both CAs");
        assert!(issues_leaf(
            &after,
            Step::SwitchLeaf,
            Some(&leaf),
            at(NOW),
            &timing()
        ));
    }

    #[test]
    fn a_certificate_secret_the_phase_does_not_want_is_published_again_and_the_wait_restarts() {
        let s = trusting(NOW - DAY);
        // The operator stopped after recording Trusting, before publishing the bundle.
        let stale = published(&stable(300 * DAY));
        assert_eq!(
            plan(&s, Some(&stale), at(NOW), &timing(), None),
            Step::Republish
        );
        let after = record(&s, Step::Republish, at(NOW), None, None).unwrap();
        assert_eq!(after.phase, Phase::Trusting { since: at(NOW) });
        assert!(
            !issues_leaf(&after, Step::Republish, Some(&stale), at(NOW), &timing()),
            "the old CA's leaf fits Trusting: only the bundle is published"
        );
        // Deleted: a new leaf of the current CA.
        assert_eq!(plan(&s, None, at(NOW), &timing(), None), Step::Republish);
        assert!(issues_leaf(
            &after,
            Step::Republish,
            None,
            at(NOW),
            &timing()
        ));
        // Switched recorded, but the old leaf is still published: a leaf of the next CA.
        let switched = CaState {
            phase: Phase::Switched {
                since: at(NOW - DAY),
            },
            ..s.clone()
        };
        let old_leaf = published(&s);
        assert_eq!(
            plan(&switched, Some(&old_leaf), at(NOW), &timing(), None),
            Step::Republish
        );
        let after = record(&switched, Step::Republish, at(NOW), None, None).unwrap();
        assert_eq!(after.phase, Phase::Switched { since: at(NOW) });
        assert!(issues_leaf(
            &after,
            Step::Republish,
            Some(&old_leaf),
            at(NOW),
            &timing()
        ));
    }

    #[test]
    fn switched_waits_for_the_new_leaf_to_reach_the_pods_then_drops_the_old_ca() {
        let s = CaState {
            phase: Phase::Switched { since: at(NOW) },
            ..trusting(NOW)
        };
        let leaf = published(&s);
        let wait = PROPAGATION.as_secs() as i64;
        assert_eq!(
            plan(&s, Some(&leaf), at(NOW + wait - 1), &timing(), None),
            Step::Nothing
        );
        assert_eq!(
            plan(&s, Some(&leaf), at(NOW + wait), &timing(), None),
            Step::DropOldCa
        );
        let after = record(&s, Step::DropOldCa, at(NOW + wait), None, None).unwrap();
        assert_eq!(after.phase, Phase::Stable);
        assert_eq!(after.current, s.next.clone().unwrap());
        assert_eq!(after.next, None);
        assert_eq!(bundle(&after), s.next.unwrap().cert_pem, "the new CA alone");
        assert!(!issues_leaf(
            &after,
            Step::DropOldCa,
            Some(&leaf),
            at(NOW),
            &timing()
        ));
        // The new leaf, published with the new CA alone, fits the new Stable phase.
        let final_leaf = LeafState {
            bundle: Some(bundle(&after)),
            ..leaf
        };
        assert_eq!(
            plan(&after, Some(&final_leaf), at(NOW + wait), &timing(), None),
            Step::Nothing
        );
    }

    #[test]
    fn stopping_between_the_two_writes_of_the_last_step_ends_in_a_leaf_of_the_new_ca() {
        // DropOldCa recorded (Stable on the new CA) but the bundle is still published.
        let s = CaState {
            phase: Phase::Switched { since: at(NOW) },
            ..trusting(NOW)
        };
        let leaf = published(&s);
        let after = record(&s, Step::DropOldCa, at(NOW), None, None).unwrap();
        assert_eq!(
            plan(&after, Some(&leaf), at(NOW), &timing(), None),
            Step::IssueLeaf
        );
    }

    #[test]
    fn a_whole_rotation_trusts_every_published_leaf_at_every_moment() {
        // Simulate passes every 5 minutes; check after every step that the leaf published
        // before the step and the one after are both trusted by both bundles (a Pod may be
        // one step behind another).
        let mut state = stable(200 * DAY);
        let mut leaf = published(&state);
        let mut phases = vec![state.phase];
        let mut now = NOW;
        for _ in 0..20 {
            let step = plan(&state, Some(&leaf), at(now), &timing(), None);
            if let Some(after) = record(
                &state,
                step,
                at(now),
                Some(ca("new", now + 3650 * DAY)),
                None,
            ) {
                let new_leaf = if issues_leaf(&after, step, Some(&leaf), at(now), &timing()) {
                    published(&after)
                } else {
                    LeafState {
                        bundle: Some(bundle(&after)),
                        ..leaf.clone()
                    }
                };
                let trusted = |bundle: &str, issuer: &str| {
                    [
                        &after.current,
                        after.next.as_ref().unwrap_or(&after.current),
                    ]
                    .into_iter()
                    .chain(std::iter::once(&state.current))
                    .chain(state.next.iter())
                    .any(|ca| fingerprint(&ca.cert_pem) == issuer && bundle.contains(&ca.cert_pem))
                };
                for bundle in [
                    leaf.bundle.as_ref().unwrap(),
                    new_leaf.bundle.as_ref().unwrap(),
                ] {
                    for issuer in [
                        leaf.issuer.as_ref().unwrap(),
                        new_leaf.issuer.as_ref().unwrap(),
                    ] {
                        assert!(
                            trusted(bundle, issuer),
                            "{step:?}: {bundle} does not trust {issuer}"
                        );
                    }
                }
                state = after;
                leaf = new_leaf;
                if phases.last() != Some(&state.phase) {
                    phases.push(state.phase);
                }
            }
            now += 5 * 60;
        }
        let kinds: Vec<&str> = phases
            .iter()
            .map(|p| match p {
                Phase::Stable => "stable",
                Phase::Trusting { .. } => "trusting",
                Phase::Switched { .. } => "switched",
            })
            .collect();
        assert_eq!(kinds, ["stable", "trusting", "switched", "stable"]);
        assert!(state.current.cert_pem.contains("new"));
    }

    #[test]
    fn a_new_request_starts_a_rotation_once_and_is_recorded() {
        // Without a request (None) nothing happens: a_stable_ca_far_from_expiry_only_renews_its_leaf.
        let s = stable(5 * 365 * DAY);
        let leaf = published(&s);
        assert_eq!(
            plan(&s, Some(&leaf), at(NOW), &timing(), Some("")),
            Step::Nothing
        );
        assert_eq!(
            plan(&s, Some(&leaf), at(NOW), &timing(), Some("2026-12-04")),
            Step::StartRotation
        );
        let after = started(&s, Some("2026-12-04"));
        assert_eq!(after.request.as_deref(), Some("2026-12-04"));
        // The rotation runs to its end; the answered request starts no other one.
        let wait = PROPAGATION.as_secs() as i64;
        let switched = record(
            &after,
            Step::SwitchLeaf,
            at(NOW + wait),
            None,
            Some("2026-12-04"),
        )
        .unwrap();
        let done = record(&switched, Step::DropOldCa, at(NOW + 2 * wait), None, None).unwrap();
        assert_eq!(done.request.as_deref(), Some("2026-12-04"));
        let final_leaf = published(&done);
        let after_end = |request| {
            plan(
                &done,
                Some(&final_leaf),
                at(NOW + 2 * wait),
                &timing(),
                request,
            )
        };
        assert_eq!(after_end(Some("2026-12-04")), Step::Nothing);
        // Another value is another request.
        assert_eq!(after_end(Some("again")), Step::StartRotation);
    }

    #[test]
    fn the_next_step_is_due_when_the_propagation_wait_ends() {
        let wait = PROPAGATION.as_secs() as i64;
        assert_eq!(next_step_in(&stable(DAY), at(NOW), &timing()), None);
        assert_eq!(
            next_step_in(&trusting(NOW), at(NOW + 60), &timing()),
            Some(Duration::from_secs(wait as u64 - 60))
        );
        assert_eq!(
            next_step_in(&trusting(NOW), at(NOW + wait + 5), &timing()),
            Some(Duration::ZERO)
        );
    }
}
