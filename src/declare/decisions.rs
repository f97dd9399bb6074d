//! The engine's decisions about answers — retries, the circuit breaker,
//! the PARAM_ILLEGAL rule, configuration-level answers — as plain state,
//! apart from channels and timers, so that each rule is tested alone.

use super::{CONFIGURATION_CODES, Job, PARAM_ILLEGAL_RULE, RunSettings, StopReason};
use crate::outcome::codes;
use crate::protocol::DeclareOutcome;

/// What the engine does next with a row, or with the pace, after an answer.
#[derive(Debug)]
pub enum Action {
    /// The row's final outcome (or, after a stop, its last one).
    Settle(Job, Option<DeclareOutcome>),
    /// To journal as provisional; the row is settled again later.
    Provisional(Job, DeclareOutcome),
    /// An answer came back well: let the pace recover.
    RecoverPace,
    /// The traffic limit: slow every worker down and send the row again
    /// once the pace allows, without using up one of its attempts.
    SlowDown(Job),
    /// Unknown: send again after the backoff for its attempts so far.
    Retry(Job),
}

/// The engine's decisions about answers — retries, the circuit breaker,
/// the PARAM_ILLEGAL rule, configuration-level answers — as plain state,
/// apart from channels and timers.
#[derive(Debug)]
pub struct Decisions {
    max_attempts: u32,
    breaker_threshold: u32,
    failures_in_a_row: u32,
    /// S and F answers so far.
    answers: u64,
    /// Every answer so far has been PARAM_ILLEGAL: those are held back.
    verdict_pending: bool,
    held: Vec<(Job, DeclareOutcome)>,
}

impl Decisions {
    pub fn new(settings: &RunSettings) -> Decisions {
        Decisions {
            max_attempts: settings.max_attempts.max(1),
            breaker_threshold: settings.breaker_threshold,
            failures_in_a_row: 0,
            answers: 0,
            verdict_pending: true,
            held: Vec::new(),
        }
    }

    /// Decides what an answer means for its row; sets `stop` when the run
    /// must stop sending.
    pub fn answer(
        &mut self,
        mut job: Job,
        outcome: DeclareOutcome,
        stop: &mut Option<StopReason>,
    ) -> Vec<Action> {
        if matches!(
            outcome,
            DeclareOutcome::Success(_) | DeclareOutcome::Failed { .. }
        ) {
            self.answers += 1;
        }
        match &outcome {
            DeclareOutcome::Failed { code, message, .. }
                if code == codes::PARAM_ILLEGAL
                    && matches!(stop, Some(StopReason::RequestRejected(_))) =>
            {
                // Sent before the rule fired: the same fault.
                let outcome = DeclareOutcome::unknown(code.clone(), message.clone());
                vec![Action::Settle(job, Some(outcome))]
            }
            DeclareOutcome::Failed { code, message, .. }
                if code == codes::PARAM_ILLEGAL && self.verdict_pending =>
            {
                self.failures_in_a_row = 0;
                let mut actions = vec![Action::Provisional(job.clone(), outcome.clone())];
                let message = message.clone();
                self.held.push((job, outcome));
                if self.answers >= PARAM_ILLEGAL_RULE {
                    self.verdict_pending = false;
                    stop.get_or_insert(StopReason::RequestRejected(message));
                    for (job, outcome) in self.held.drain(..) {
                        let DeclareOutcome::Failed { code, message, .. } = outcome else {
                            unreachable!("only PARAM_ILLEGAL answers are held")
                        };
                        let message = format!(
                            "{message} (left unknown: the first {PARAM_ILLEGAL_RULE} answers of \
                             the run were all PARAM_ILLEGAL)"
                        );
                        actions.push(Action::Settle(
                            job,
                            Some(DeclareOutcome::unknown(code, message)),
                        ));
                    }
                }
                actions
            }
            DeclareOutcome::Success(_) | DeclareOutcome::Failed { .. }
                if !CONFIGURATION_CODES.contains(&outcome.code()) =>
            {
                self.failures_in_a_row = 0;
                let mut actions = vec![Action::RecoverPace];
                if self.verdict_pending {
                    // An answer of another kind: the held ones are the
                    // rows' own, and final.
                    self.verdict_pending = false;
                    for (job, outcome) in self.held.drain(..) {
                        actions.push(Action::Settle(job, Some(outcome)));
                    }
                }
                actions.push(Action::Settle(job, Some(outcome)));
                actions
            }
            DeclareOutcome::Failed { code, message, .. } => {
                // Configuration-level: the row stays unknown.
                stop.get_or_insert(if code == crate::client::REDIRECTED {
                    StopReason::Redirected(message.clone())
                } else {
                    StopReason::Configuration(code.clone())
                });
                let outcome = DeclareOutcome::unknown(code.clone(), message.clone());
                vec![Action::Settle(job, Some(outcome))]
            }
            DeclareOutcome::Unknown { code, .. } if code == codes::REQUEST_TRAFFIC_EXCEED_LIMIT => {
                remember(&mut job, &outcome);
                vec![Action::SlowDown(job)]
            }
            DeclareOutcome::Unknown { code, message } => {
                self.failures_in_a_row += 1;
                job.attempts_used += 1;
                remember(&mut job, &outcome);
                if self.failures_in_a_row >= self.breaker_threshold {
                    stop.get_or_insert(StopReason::EndpointFailing {
                        count: self.failures_in_a_row,
                        last_cause: format!("{code}: {message}"),
                    });
                }
                if job.attempts_used >= self.max_attempts || stop.is_some() {
                    vec![Action::Settle(job, Some(outcome))]
                } else {
                    vec![Action::Retry(job)]
                }
            }
            DeclareOutcome::Success(_) => unreachable!("handled by the third arm"),
        }
    }

    /// At the end of the run: fewer answers than the PARAM_ILLEGAL rule
    /// needs, all PARAM_ILLEGAL, are the rows' own, and final.
    pub fn finish(&mut self) -> Vec<Action> {
        self.held
            .drain(..)
            .map(|(job, outcome)| Action::Settle(job, Some(outcome)))
            .collect()
    }
}

/// Jobs keep their last unknown outcome so that a row settled without a
/// further answer reports it.
fn remember(job: &mut Job, outcome: &DeclareOutcome) {
    if let DeclareOutcome::Unknown { code, message } = outcome {
        job.last_unknown = Some((code.clone(), message.clone()));
    }
}

pub(super) fn last_unknown(job: &Job) -> Option<DeclareOutcome> {
    job.last_unknown
        .as_ref()
        .map(|(code, message)| DeclareOutcome::unknown(code.clone(), message.clone()))
}
