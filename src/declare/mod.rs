//! The batch run's engine. Valid rows arrive over a bounded channel; a
//! dispatcher hands them to a fixed pool of workers that share one rate
//! limiter (every attempt takes a token); each worker signs and sends, and
//! reports the outcome back. Unknown outcomes go back into the queue with a
//! ready time (exponential backoff with jitter) instead of holding a worker
//! asleep; F outcomes are final; REQUEST_TRAFFIC_EXCEED_LIMIT slows the run
//! down without using up the row's attempts. A configuration-level answer
//! stops the run (the rows stay unknown), and so does an endpoint that keeps
//! failing (a circuit breaker), a run whose first answers are all
//! PARAM_ILLEGAL (the request is at fault, not the rows), and a stop asked
//! for from outside (an interrupt, an output that cannot be written). Once
//! stopped, nothing more goes on the wire: a row waiting for a worker or a
//! rate token is settled as not sent; only requests already sent are
//! awaited.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use tokio::sync::{Mutex, mpsc};

use crate::client::DeclareClient;
use crate::input::OwnedRow;
use crate::outcome::{Status, StatusCounts};
use crate::protocol::{DeclareOutcome, DeclareRequest};

mod decisions;
mod journal;

use decisions::last_unknown;
pub use decisions::{Action, Decisions};
pub use journal::{FinalRecord, Journal, Replay};

/// Answers that mean the configuration is wrong, not the row: the run
/// stops and the rows stay unknown, so that a fixed config sends them again.
pub const CONFIGURATION_CODES: [&str; 8] = [
    crate::client::REDIRECTED,
    "INVALID_SIGNATURE",
    "INVALID_CLIENT",
    "KEY_NOT_FOUND",
    "ACCESS_DENIED",
    "NO_INTERFACE_DEF",
    "METHOD_NOT_SUPPORTED",
    "MEDIA_TYPE_NOT_ACCEPTABLE",
];

/// The code of a row that was never sent.
pub use crate::outcome::codes::NOT_SENT;

/// PARAM_ILLEGAL also covers the request's headers: when the first this
/// many answers of a run all say it for rows that passed validation, the
/// request is at fault and the run stops with the rows unknown.
pub const PARAM_ILLEGAL_RULE: u64 = 20;

/// How the run paces and retries.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Requests started per second, all attempts; 0 = no limit.
    pub rate_per_sec: u32,
    pub burst: u32,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    /// Unknown outcomes in a row (traffic limits aside) that mean the
    /// endpoint has stopped answering.
    pub breaker_threshold: u32,
    /// How long to wait for such an endpoint, probing it, before the run
    /// stops; zero: stop at once.
    pub outage_wait: Duration,
}

/// A valid row on its way through the run.
#[derive(Debug, Clone)]
pub struct Job {
    pub request: DeclareRequest,
    /// The exact bytes sent on every attempt.
    pub body: Vec<u8>,
    pub row: OwnedRow,
    /// Requests sent for this row, traffic-limit answers included.
    pub sent: u32,
    /// Attempts counted against `max_attempts`.
    pub attempts_used: u32,
    /// A changed row sent again under its declared request ID.
    pub retransmission: bool,
    /// The last unknown answer (code, message), for a row settled without
    /// a further one.
    last_unknown: Option<(String, String)>,
    /// Sent to learn whether an endpoint that stopped answering is back.
    probe: bool,
}

impl Job {
    pub fn new(request: DeclareRequest, body: Vec<u8>, row: OwnedRow) -> Job {
        Job {
            request,
            body,
            row,
            sent: 0,
            attempts_used: 0,
            retransmission: false,
            last_unknown: None,
            probe: false,
        }
    }
}

/// Why the run stopped before declaring everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A configuration-level answer (the code) from the API.
    Configuration(String),
    /// The endpoint answered with a redirect, not followed: the message
    /// names the status and where it pointed.
    Redirected(String),
    /// The first answers were all PARAM_ILLEGAL; the last one's message.
    RequestRejected(String),
    /// The endpoint failed this many times in a row; the last cause.
    EndpointFailing { count: u32, last_cause: String },
    /// The endpoint did not answer again within the outage wait.
    OutageOutlasted {
        waited_secs: u64,
        last_cause: String,
    },
    /// SIGINT or SIGTERM.
    Interrupted,
    /// An output could not be written: which, and the OS error.
    WriteFailed(String),
}

impl StopReason {
    /// One line saying why the run stopped.
    pub fn describe(&self) -> String {
        match self {
            StopReason::Configuration(code) => format!("configuration: the API answered {code}"),
            StopReason::Redirected(message) => message.clone(),
            StopReason::RequestRejected(message) => format!(
                "the first {PARAM_ILLEGAL_RULE} answers were all PARAM_ILLEGAL for rows that \
                 passed validation: the request is at fault, not the rows (last answer: \
                 {message})"
            ),
            StopReason::EndpointFailing { count, last_cause } => format!(
                "endpoint failing: {count} unknown outcomes in a row; the last: {last_cause}"
            ),
            StopReason::OutageOutlasted {
                waited_secs,
                last_cause,
            } => format!(
                "endpoint failing: no answer for {waited_secs} s (outage_wait_secs, \
                 --outage-wait); the last: {last_cause}"
            ),
            StopReason::Interrupted => "interrupted".to_owned(),
            StopReason::WriteFailed(what) => format!("an output cannot be written: {what}"),
        }
    }
}

/// The end of one row's journey.
#[derive(Debug)]
pub struct Settled {
    pub job: Job,
    /// The final outcome, or the last unknown one; `None`: never sent.
    pub outcome: Option<DeclareOutcome>,
    /// A PARAM_ILLEGAL answer that may yet turn out to be the request's
    /// fault: to be journaled as provisional, not written out. The row is
    /// settled again, finally, once that is known.
    pub provisional: bool,
}

/// Slows every worker down after REQUEST_TRAFFIC_EXCEED_LIMIT and lets the
/// pace recover gradually as answers succeed.
#[derive(Debug, Default)]
pub struct Pacing {
    extra_delay_micros: AtomicU64,
}

impl Pacing {
    const MAX: u64 = 5_000_000;

    fn slow_down(&self, interval: Duration) {
        let floor = (interval.as_micros() as u64).max(10_000);
        let _ =
            self.extra_delay_micros
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                    Some((current.max(floor / 2) * 2).min(Self::MAX))
                });
    }

    fn recover(&self) {
        let _ =
            self.extra_delay_micros
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                    Some(if current < 1_000 { 0 } else { current * 9 / 10 })
                });
    }

    fn delay(&self) -> Duration {
        Duration::from_micros(self.extra_delay_micros.load(Ordering::SeqCst))
    }
}

fn limiter(settings: &RunSettings) -> Option<Arc<DefaultDirectRateLimiter>> {
    let rate = NonZeroU32::new(settings.rate_per_sec)?;
    let burst = NonZeroU32::new(settings.burst.max(1)).expect("at least 1");
    Some(Arc::new(RateLimiter::direct(
        Quota::per_second(rate).allow_burst(burst),
    )))
}

/// Exponential backoff with jitter: between half and all of
/// `base * 2^(attempt-1)`, at most a minute.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(Duration::from_secs(60));
    full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// Called with each job just before its request is sent; `false` keeps
/// the request off the wire (the journal could not record it).
pub type BeforeSend = Arc<dyn Fn(&Job) -> bool + Send + Sync>;

/// What a worker hands back.
enum Done {
    /// The answer, when the request was sent, and how long it took.
    Answered(Box<(Job, DeclareOutcome, Instant, Duration)>),
    /// The run stopped (or the attempt could not be journaled) before the
    /// request went on the wire.
    NotSent(Box<Job>),
    /// The endpoint stopped answering before the request went on the wire:
    /// the row waits for it.
    Held(Box<Job>),
}

async fn worker(
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    before_send: BeforeSend,
    client: DeclareClient,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    pacing: Arc<Pacing>,
    holds: Holds,
    done: mpsc::Sender<Done>,
) {
    let Holds {
        mut halt,
        endpoint_down,
    } = holds;
    loop {
        let Some(mut job) = jobs.lock().await.recv().await else {
            return;
        };
        let ready = async {
            let extra = pacing.delay();
            if !extra.is_zero() {
                tokio::time::sleep(extra).await;
            }
            if let Some(limiter) = &limiter {
                limiter.until_ready().await;
            }
        };
        // A stop while waiting for a rate token keeps the row off the wire.
        let halted = tokio::select! {
            () = ready => None,
            _ = halt.wait_for(|halted| *halted) => Some(true),
        }
        .unwrap_or_else(|| *halt.borrow());
        let message = if endpoint_down.load(Ordering::SeqCst) && !job.probe && !halted {
            Done::Held(Box::new(job))
        } else if halted || !before_send(&job) {
            Done::NotSent(Box::new(job))
        } else {
            job.sent += 1;
            let sent_at = Instant::now();
            let outcome = client.declare(&job.body).await;
            Done::Answered(Box::new((job, outcome, sent_at, sent_at.elapsed())))
        };
        if done.send(message).await.is_err() {
            return;
        }
    }
}

/// What keeps a worker's request off the wire: the run's stop, and an
/// endpoint that stopped answering (only probes go then).
#[derive(Clone)]
struct Holds {
    halt: tokio::sync::watch::Receiver<bool>,
    endpoint_down: Arc<AtomicBool>,
}

/// Counts while the run goes, for progress lines and the summary.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub requests: u64,
    /// The rows settled by this invocation, by status.
    pub settled: StatusCounts,
}

/// Hands settled rows on and keeps the tally.
struct Settler<F> {
    settle: F,
    tally: Tally,
}

impl<F: FnMut(Settled, &Tally)> Settler<F> {
    fn settle(&mut self, job: Job, outcome: Option<DeclareOutcome>) {
        let status = outcome.as_ref().map_or(Status::U, DeclareOutcome::status);
        self.tally.settled.add(status);
        let settled = Settled {
            job,
            outcome,
            provisional: false,
        };
        (self.settle)(settled, &self.tally);
    }

    /// Hands on a provisional answer; the row is settled again later.
    fn provisional(&mut self, job: &Job, outcome: &DeclareOutcome) {
        let settled = Settled {
            job: job.clone(),
            outcome: Some(outcome.clone()),
            provisional: true,
        };
        (self.settle)(settled, &self.tally);
    }
}

/// Declares every job from `rows`, calling `settle` once per row with its
/// final outcome (and before that, for a PARAM_ILLEGAL answer among the
/// first, once as provisional). Returns why it stopped early, if it did;
/// every row that arrives is settled either way. A `Some` on `stop_requests`
/// stops the run for that reason.
pub async fn declare_all(
    settings: &RunSettings,
    client: DeclareClient,
    before_send: BeforeSend,
    mut stop_requests: tokio::sync::watch::Receiver<Option<StopReason>>,
    mut rows: mpsc::Receiver<Job>,
    settle: impl FnMut(Settled, &Tally),
    mut on_outage: impl FnMut(OutageNotice),
) -> (Option<StopReason>, Timing) {
    let started = Instant::now();
    let mut timing = Timing::default();
    let mut settler = Settler {
        settle,
        tally: Tally::default(),
    };
    let concurrency = settings.concurrency.max(1);
    let (job_tx, job_rx) = mpsc::channel::<Job>(concurrency);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(concurrency * 2);
    let (halt_tx, halt_rx) = tokio::sync::watch::channel(false);
    let limiter = limiter(settings);
    let pacing = Arc::new(Pacing::default());
    let endpoint_down = Arc::new(AtomicBool::new(false));
    let interval = Duration::from_secs(1) / settings.rate_per_sec.max(1);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        workers.spawn(worker(
            Arc::clone(&job_rx),
            Arc::clone(&before_send),
            client.clone(),
            limiter.clone(),
            Arc::clone(&pacing),
            Holds {
                halt: halt_rx.clone(),
                endpoint_down: Arc::clone(&endpoint_down),
            },
            done_tx.clone(),
        ));
    }
    drop(done_tx);
    let mut job_tx = Some(job_tx);

    let mut ready: VecDeque<Job> = VecDeque::new();
    // Jobs waiting for a retry, by (ready time, arrival) so that equal
    // times keep their order.
    let mut delayed: BTreeMap<(Instant, u64), Job> = BTreeMap::new();
    let mut delayed_seq = 0u64;
    // Jobs handed to a worker and not yet handed back.
    let mut in_flight = 0usize;
    let mut rows_open = true;
    let mut stop: Option<StopReason> = stop_requests.borrow().clone();
    let mut stop_requests_open = true;
    let mut decisions = Decisions::new(settings);
    let mut outage: Option<OutageWait> = None;

    loop {
        let now = Instant::now();
        while delayed
            .first_key_value()
            .is_some_and(|((due, _), _)| *due <= now)
        {
            let (_, job) = delayed.pop_first().expect("checked non-empty");
            ready.push_back(job);
        }
        if let Some(wait) = &outage {
            if stop.is_none() && !wait.probe_in_flight && now >= wait.since + settings.outage_wait {
                decisions.give_up(now.duration_since(wait.since), &mut stop);
            }
            if !wait.probe_in_flight && now >= wait.next_probe && ready.is_empty() {
                // The probe need not wait for a retry's backoff.
                if let Some((_, job)) = delayed.pop_first() {
                    ready.push_back(job);
                }
            }
        }
        if stop.is_some()
            && let Some(wait) = outage.take()
        {
            timing.outage_time += wait.since.elapsed();
        }
        if stop.is_some() {
            // Nothing more is sent: settle what waits, keep draining input.
            halt_tx.send_replace(true);
            for job in ready.drain(..) {
                let outcome = last_unknown(&job);
                settler.settle(job, outcome);
            }
            for (_, job) in std::mem::take(&mut delayed) {
                let outcome = last_unknown(&job);
                settler.settle(job, outcome);
            }
            job_tx = None;
        }
        if !rows_open && ready.is_empty() && delayed.is_empty() && in_flight == 0 {
            break;
        }
        let mut next_due = delayed.first_key_value().map(|((due, _), _)| *due);
        // While the endpoint is down, one probe at a time, when it is due.
        let probe_now = match &outage {
            None => true,
            Some(wait) => {
                let wake = wait.next_probe.min(wait.since + settings.outage_wait);
                // Only a time still to come: while requests are out, their
                // answers wake the loop (a past time would spin it).
                if !wait.probe_in_flight && in_flight == 0 && wake > now {
                    next_due = Some(next_due.map_or(wake, |due| due.min(wake)));
                }
                !wait.probe_in_flight && in_flight == 0 && now >= wait.next_probe
            }
        };
        let can_send = stop.is_none() && !ready.is_empty() && probe_now;
        let room_for_rows = ready.len() < concurrency * 2;
        tokio::select! {
            permit = async { job_tx.as_ref().expect("open while sending").reserve().await }, if can_send && job_tx.is_some() => {
                if let Ok(permit) = permit {
                    let mut job = ready.pop_front().expect("checked non-empty");
                    if let Some(wait) = &mut outage {
                        wait.probe_in_flight = true;
                        job.probe = true;
                    }
                    permit.send(job);
                    in_flight += 1;
                }
            }
            row = rows.recv(), if rows_open && (room_for_rows || stop.is_some()) => {
                match row {
                    Some(job) if stop.is_some() => settler.settle(job, None),
                    Some(job) => ready.push_back(job),
                    None => rows_open = false,
                }
            }
            done = done_rx.recv(), if in_flight > 0 => {
                let Some(done) = done else { break };
                in_flight -= 1;
                let (job, outcome) = match done {
                    Done::Answered(answered) => {
                        let (mut job, outcome, sent_at, latency) = *answered;
                        job.probe = false;
                        timing.record(sent_at.saturating_duration_since(started), latency);
                        (job, outcome)
                    }
                    Done::Held(job) => {
                        ready.push_front(*job);
                        continue;
                    }
                    Done::NotSent(job) => {
                        let job = *job;
                        // Kept off the wire by a stop: never re-queued.
                        if stop.is_none() {
                            stop = Some(stop_requests.borrow().clone().unwrap_or(StopReason::Interrupted));
                        }
                        let outcome = last_unknown(&job);
                        settler.settle(job, outcome);
                        continue;
                    }
                };
                settler.tally.requests += 1;
                let probe = outage.as_mut().is_some_and(|wait| std::mem::take(&mut wait.probe_in_flight));
                let cause = match &outcome {
                    DeclareOutcome::Unknown { code, message } => format!("{code}: {message}"),
                    _ => String::new(),
                };
                for action in decisions.answer(job, outcome, &mut stop) {
                    match action {
                        Action::EndpointDown { cause } => {
                            endpoint_down.store(true, Ordering::SeqCst);
                            timing.outages += 1;
                            outage = Some(OutageWait::begin(Instant::now()));
                            on_outage(OutageNotice::Began {
                                cause,
                                wait: settings.outage_wait,
                            });
                        }
                        Action::EndpointBack => {
                            endpoint_down.store(false, Ordering::SeqCst);
                            if let Some(wait) = outage.take() {
                                let lasted = wait.since.elapsed();
                                timing.outage_time += lasted;
                                on_outage(OutageNotice::Ended { lasted });
                            }
                        }
                        Action::Hold(job) => {
                            timing.retries += 1;
                            ready.push_front(job);
                        }
                        Action::Settle(job, outcome) => settler.settle(job, outcome),
                        Action::Provisional(job, outcome) => settler.provisional(&job, &outcome),
                        Action::RecoverPace => pacing.recover(),
                        Action::SlowDown(job) => {
                            timing.retries += 1;
                            pacing.slow_down(interval);
                            delayed_seq += 1;
                            delayed.insert((Instant::now() + pacing.delay(), delayed_seq), job);
                        }
                        Action::Retry(job) => {
                            timing.retries += 1;
                            delayed_seq += 1;
                            let due = Instant::now() + backoff(settings.backoff_base, job.attempts_used);
                            delayed.insert((due, delayed_seq), job);
                        }
                    }
                }
                if probe && let Some(wait) = &mut outage {
                    wait.probes += 1;
                    wait.next_probe = Instant::now() + OutageWait::probe_delay(wait.probes);
                    on_outage(OutageNotice::ProbeFailed {
                        waited: wait.since.elapsed(),
                        next_probe_in: OutageWait::probe_delay(wait.probes),
                        cause,
                    });
                }
            }
            changed = stop_requests.changed(), if stop.is_none() && stop_requests_open => {
                match changed {
                    Ok(()) => stop.clone_from(&stop_requests.borrow()),
                    // Nobody can ask for a stop any more.
                    Err(_) => stop_requests_open = false,
                }
            }
            _ = async {
                match next_due {
                    Some(due) => tokio::time::sleep_until(due.into()).await,
                    None => std::future::pending().await,
                }
            }, if next_due.is_some() && stop.is_none() => {}
        }
    }
    if let Some(wait) = outage.take() {
        timing.outage_time += wait.since.elapsed();
    }
    for action in decisions.finish() {
        if let Action::Settle(job, outcome) = action {
            settler.settle(job, outcome);
        }
    }
    drop(job_tx);
    while workers.join_next().await.is_some() {}
    (stop, timing)
}

/// What the engine says about an endpoint that stopped answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutageNotice {
    /// Sending stopped; the run probes the endpoint for at most `wait`.
    Began { cause: String, wait: Duration },
    /// A probe was not answered; the next one goes in `next_probe_in`.
    ProbeFailed {
        waited: Duration,
        next_probe_in: Duration,
        cause: String,
    },
    /// The endpoint answered again: sending resumes at the run's rate.
    Ended { lasted: Duration },
}

/// The run's wait for an endpoint that stopped answering.
#[derive(Debug)]
struct OutageWait {
    since: Instant,
    /// Probes sent and not answered.
    probes: u32,
    next_probe: Instant,
    probe_in_flight: bool,
}

impl OutageWait {
    fn begin(now: Instant) -> OutageWait {
        OutageWait {
            since: now,
            probes: 0,
            next_probe: now + OutageWait::probe_delay(0),
            probe_in_flight: false,
        }
    }

    /// 1 s before the first probe, doubling after each unanswered one, at
    /// most 30 s: a short outage is noticed soon, a long one is not hammered.
    fn probe_delay(probes: u32) -> Duration {
        Duration::from_secs(1u64 << probes.min(5)).min(Duration::from_secs(30))
    }
}

/// When requests went out and how long their answers took, for the
/// report: requests started in each second since the engine started, and
/// each request's latency in microseconds; and the time spent waiting for
/// an endpoint that stopped answering.
#[derive(Debug, Default, Clone)]
pub struct Timing {
    pub per_second: Vec<u64>,
    pub latencies_micros: Vec<u32>,
    /// Rows put back to be sent again after an unknown answer (traffic
    /// limits and outages included).
    pub retries: u64,
    /// Outages waited out (or waited for until the run stopped).
    pub outages: u32,
    pub outage_time: Duration,
}

impl Timing {
    fn record(&mut self, since_start: Duration, latency: Duration) {
        let second = since_start.as_secs() as usize;
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
        self.latencies_micros
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }
}

#[cfg(test)]
mod tests;
