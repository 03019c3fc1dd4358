//! Lease-based leader election (`coordination.k8s.io/v1`): acquire or renew with
//! resourceVersion-conditional writes; only the holder runs the controllers.
//!
//! A replica holds the Lease while `renewTime + leaseDurationSeconds` is in the future. Every
//! write carries the resourceVersion that was read, so two candidates racing for an expired
//! Lease cannot both win: one gets 409 Conflict and stays a follower.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use std::time::Duration;
use tokio::sync::watch;

/// Settings of one election participant.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This participant's identity.
    pub identity: String,
    /// How long a Lease is valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews (and followers retry).
    pub renew_every: Duration,
}

/// A Lease API call failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Reading the Lease failed.
    #[error("cannot read Lease {name}: {source}")]
    LeaseRead {
        /// The Lease.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Writing the Lease failed (other than a lost race).
    #[error("cannot write Lease {name}: {source}")]
    LeaseWrite {
        /// The Lease.
        name: String,
        /// The API error.
        source: kube::Error,
    },
}

/// What a participant does with the Lease it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// No Lease: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Nobody holds it or it expired: take it over.
    TakeOver,
    /// Someone else holds a valid Lease.
    Follow,
}

/// Decide the step for `identity` given the current Lease spec at `now`.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Step {
    let Some(spec) = spec else {
        return Step::Create;
    };
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == identity => Step::Renew,
        None | Some("") => Step::TakeOver,
        Some(_) => {
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref());
            match renewed {
                Some(MicroTime(t)) if *t + SignedDuration::from_secs(duration) > now => {
                    Step::Follow
                }
                _ => Step::TakeOver,
            }
        }
    }
}

/// One participant of the election.
#[derive(Clone)]
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("config", &self.config)
            .finish()
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl Elector {
    /// A participant using `client`.
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// This participant's identity.
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    fn spec(&self, now: Timestamp, previous: Option<&LeaseSpec>, take_over: bool) -> LeaseSpec {
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        let acquire = match previous {
            Some(p) if !take_over => p.acquire_time.clone(),
            _ => Some(MicroTime(now)),
        };
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(15),
            ),
            acquire_time: acquire,
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if take_over && previous.is_some() {
                transitions + 1
            } else {
                transitions
            }),
            ..Default::default()
        }
    }

    /// Try to acquire or renew the Lease once; `Ok(true)` when we hold it afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaseError> {
        let name = &self.config.name;
        let now = Timestamp::now();
        let current = self
            .api
            .get_opt(name)
            .await
            .map_err(|source| LeaseError::LeaseRead {
                name: name.clone(),
                source,
            })?;
        let step = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.config.identity,
            now,
        );
        let write = match (step, current) {
            (Step::Follow, _) => return Ok(false),
            (Step::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(now, None, true)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (step, Some(mut lease)) => {
                // `replace` sends the resourceVersion we read: a concurrent write makes it 409.
                lease.spec = Some(self.spec(now, lease.spec.as_ref(), step == Step::TakeOver));
                self.api.replace(name, &PostParams::default(), &lease).await
            }
        };
        match write {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(source) => Err(LeaseError::LeaseWrite {
                name: name.clone(),
                source,
            }),
        }
    }

    /// Give the Lease up if we hold it, so another participant takes over at once.
    pub async fn release(&self) -> Result<(), LeaseError> {
        let name = &self.config.name;
        let Some(mut lease) =
            self.api
                .get_opt(name)
                .await
                .map_err(|source| LeaseError::LeaseRead {
                    name: name.clone(),
                    source,
                })?
        else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        match self.api.replace(name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(source) => Err(LeaseError::LeaseWrite {
                name: name.clone(),
                source,
            }),
        }
    }

    /// Campaign until `stop` resolves, publishing leadership on `leading`. Leadership is
    /// dropped when renewals keep failing for two thirds of the lease duration, before anyone
    /// else may take over. On stop the Lease is released.
    pub async fn run(self, leading: watch::Sender<bool>, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let deadline = self.config.lease_duration * 2 / 3;
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            let held = match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_renewal = Some(tokio::time::Instant::now());
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: renewal failed");
                    last_renewal.is_some_and(|t| t.elapsed() < deadline)
                }
            };
            if !held {
                last_renewal = None;
            }
            if *leading.borrow() != held {
                tracing::info!(identity = %self.config.identity, leading = held, "leadership changed");
                leading.send_replace(held);
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(self.config.renew_every) => {}
            }
        }
        leading.send_replace(false);
        if let Err(e) = self.release().await {
            tracing::warn!(error = %e, "leader election: cannot release the Lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn spec(holder: Option<&str>, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(ts(renewed))),
            ..Default::default()
        }
    }

    #[test]
    fn decides_each_step() {
        assert_eq!(decide(None, "a", ts(0)), Step::Create);
        assert_eq!(decide(Some(&spec(Some("a"), 0)), "a", ts(100)), Step::Renew);
        assert_eq!(
            decide(Some(&spec(Some("b"), 100)), "a", ts(110)),
            Step::Follow
        );
        assert_eq!(
            decide(Some(&spec(Some("b"), 100)), "a", ts(116)),
            Step::TakeOver
        );
        assert_eq!(decide(Some(&spec(None, 100)), "a", ts(101)), Step::TakeOver);
    }
}
