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
    /// The endpoint has stopped answering (the breaker's count of unknown
    /// answers in a row, with outages to ride out): stop sending and probe.
    EndpointDown { cause: String },
    /// A probe (or a request sent before the outage) was answered: the
    /// endpoint is back; send at the run's rate again.
    EndpointBack,
    /// Unknown while the endpoint is down: the row waits for the endpoint,
    /// without using up an attempt (the endpoint is at fault, not the row).
    Hold(Job),
}

/// The engine's decisions about answers — retries, the circuit breaker,
/// the PARAM_ILLEGAL rule, configuration-level answers — as plain state,
/// apart from channels and timers.
#[derive(Debug)]
pub struct Decisions {
    max_attempts: u32,
    breaker_threshold: u32,
    /// The breaker waits for the endpoint instead of stopping the run.
    ride_outages: bool,
    /// The breaker is open and the run is waiting for the endpoint.
    endpoint_down: bool,
    failures_in_a_row: u32,
    /// The last unknown answer's code and message.
    last_cause: String,
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
            ride_outages: !settings.outage_wait.is_zero(),
            endpoint_down: false,
            failures_in_a_row: 0,
            last_cause: String::new(),
            answers: 0,
            verdict_pending: true,
            held: Vec::new(),
        }
    }

    /// Decides what an answer means for its row; sets `stop` when the run
    /// must stop sending.
    pub fn answer(
        &mut self,
        job: Job,
        outcome: DeclareOutcome,
        stop: &mut Option<StopReason>,
    ) -> Vec<Action> {
        if matches!(
            outcome,
            DeclareOutcome::Success(_) | DeclareOutcome::Failed { .. }
        ) {
            self.answers += 1;
        }
        let mut actions = Vec::new();
        let answered = match &outcome {
            DeclareOutcome::Unknown { code, .. } => code == codes::REQUEST_TRAFFIC_EXCEED_LIMIT,
            DeclareOutcome::Success(_) | DeclareOutcome::Failed { .. } => true,
        };
        if answered && self.endpoint_down {
            self.endpoint_down = false;
            self.failures_in_a_row = 0;
            actions.push(Action::EndpointBack);
        }
        actions.extend(self.decide(job, outcome, stop));
        actions
    }

    /// Whether the run is waiting for the endpoint to answer again.
    pub fn endpoint_down(&self) -> bool {
        self.endpoint_down
    }

    /// The wait for the endpoint ran out: the run stops.
    pub fn give_up(&mut self, waited: std::time::Duration, stop: &mut Option<StopReason>) {
        self.endpoint_down = false;
        stop.get_or_insert(StopReason::OutageOutlasted {
            waited_secs: waited.as_secs(),
            last_cause: self.last_cause.clone(),
        });
    }

    fn decide(
        &mut self,
        mut job: Job,
        outcome: DeclareOutcome,
        stop: &mut Option<StopReason>,
    ) -> Vec<Action> {
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
                self.last_cause = format!("{code}: {message}");
                remember(&mut job, &outcome);
                if self.endpoint_down && stop.is_none() {
                    return vec![Action::Hold(job)];
                }
                job.attempts_used += 1;
                // A row out of attempts with nothing but failures of the
                // endpoint since its first: the endpoint is down, not the
                // row (few rows are open at the tail of a night, too few to
                // reach the breaker's count).
                let tail_outage = job.attempts_used >= self.max_attempts
                    && endpoint_failure(code)
                    && self.failures_in_a_row >= self.max_attempts;
                if (self.failures_in_a_row >= self.breaker_threshold || tail_outage)
                    && self.ride_outages
                {
                    if stop.is_some() {
                        return vec![Action::Settle(job, Some(outcome))];
                    }
                    self.endpoint_down = true;
                    // The endpoint's fault, not the row's: the attempt is given back.
                    job.attempts_used -= 1;
                    return vec![
                        Action::EndpointDown {
                            cause: self.last_cause.clone(),
                        },
                        Action::Hold(job),
                    ];
                }
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

/// An unknown outcome that says the endpoint did not answer at all (no
/// connection, no answer in time, a server error), not a row's own unknown.
fn endpoint_failure(code: &str) -> bool {
    matches!(code, "TIMEOUT" | "CONNECTION_ERROR")
        || code
            .strip_prefix("HTTP_")
            .is_some_and(|status| status.starts_with('5'))
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
