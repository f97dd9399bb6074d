//! The engine's decisions checked as plain state, and the engine against
//! a stand-in client.

use super::*;
use crate::protocol::DeclareResponse;

fn job(line: u64) -> Job {
    let request = DeclareRequest::example(&format!("D{line}"), &format!("P{line}"), "100");
    let body = request.to_body();
    Job::new(request, body, OwnedRow::from_texts(line, &["x"]))
}

fn settings() -> RunSettings {
    RunSettings {
        rate_per_sec: 0,
        burst: 1,
        concurrency: 1,
        max_attempts: 3,
        backoff_base: Duration::from_millis(1),
        breaker_threshold: 4,
        outage_wait: Duration::ZERO,
    }
}

fn success() -> DeclareOutcome {
    DeclareOutcome::Success(DeclareResponse::result("S", "SUCCESS", "ok"))
}

fn failed(code: &str) -> DeclareOutcome {
    DeclareOutcome::Failed {
        code: code.into(),
        message: format!("{code} message"),
        response: DeclareResponse::result("F", code, "no"),
    }
}

/// The actions as (kind, row, status of the outcome settled).
fn kinds(actions: &[Action]) -> Vec<(&'static str, u64, Option<Status>)> {
    actions
        .iter()
        .map(|action| match action {
            Action::Settle(job, outcome) => (
                "settle",
                job.row.line,
                outcome.as_ref().map(DeclareOutcome::status),
            ),
            Action::Provisional(job, _) => ("provisional", job.row.line, None),
            Action::RecoverPace => ("recover", 0, None),
            Action::SlowDown(job) => ("slow", job.row.line, None),
            Action::Retry(job) => ("retry", job.row.line, None),
            Action::EndpointDown { .. } => ("down", 0, None),
            Action::EndpointBack => ("back", 0, None),
            Action::Hold(job) => ("hold", job.row.line, None),
        })
        .collect()
}

fn take_job(mut actions: Vec<Action>) -> Job {
    match actions.pop() {
        Some(
            Action::Retry(job) | Action::SlowDown(job) | Action::Settle(job, _) | Action::Hold(job),
        ) => job,
        other => panic!("no job in {other:?}"),
    }
}

#[test]
fn unknown_answers_are_retried_until_the_attempts_are_used_up() {
    let mut decisions = Decisions::new(&settings());
    let mut stop = None;
    let mut row = job(2);
    // A success between keeps the breaker closed.
    for attempt in 1..=2 {
        let actions = decisions.answer(row, DeclareOutcome::unknown("TIMEOUT", "slow"), &mut stop);
        assert_eq!(kinds(&actions), [("retry", 2, None)], "attempt {attempt}");
        row = take_job(actions);
        assert_eq!(row.attempts_used, attempt);
        decisions.answer(job(9), success(), &mut stop);
    }
    let actions = decisions.answer(row, DeclareOutcome::unknown("TIMEOUT", "slow"), &mut stop);
    assert_eq!(kinds(&actions), [("settle", 2, Some(Status::U))]);
    assert_eq!(stop, None);
}

#[test]
fn the_traffic_limit_slows_down_without_using_an_attempt() {
    let mut decisions = Decisions::new(&settings());
    let mut stop = None;
    let mut row = job(2);
    for _ in 0..10 {
        let actions = decisions.answer(
            row,
            DeclareOutcome::unknown("REQUEST_TRAFFIC_EXCEED_LIMIT", "too fast"),
            &mut stop,
        );
        assert_eq!(kinds(&actions), [("slow", 2, None)]);
        row = take_job(actions);
    }
    assert_eq!(row.attempts_used, 0);
    assert_eq!(stop, None, "traffic limits never trip the breaker");
}

#[test]
fn the_breaker_opens_after_unknowns_in_a_row_and_names_the_last_cause() {
    let mut decisions = Decisions::new(&settings());
    let mut stop = None;
    for line in 2..5 {
        decisions.answer(
            job(line),
            DeclareOutcome::unknown("TIMEOUT", "t"),
            &mut stop,
        );
    }
    decisions.answer(job(5), failed("ORDER_NOT_EXIST"), &mut stop);
    for line in 6..9 {
        decisions.answer(
            job(line),
            DeclareOutcome::unknown("TIMEOUT", "t"),
            &mut stop,
        );
    }
    assert_eq!(stop, None, "an answer in between closes it again");
    let actions = decisions.answer(
        job(9),
        DeclareOutcome::unknown("HTTP_502", "bad gateway"),
        &mut stop,
    );
    assert_eq!(
        stop,
        Some(StopReason::EndpointFailing {
            count: 4,
            last_cause: "HTTP_502: bad gateway".into()
        })
    );
    assert_eq!(
        kinds(&actions),
        [("settle", 9, Some(Status::U))],
        "no retry once stopped"
    );
}

#[test]
fn a_configuration_answer_stops_the_run_and_leaves_the_row_unknown() {
    let mut decisions = Decisions::new(&settings());
    let mut stop = None;
    let actions = decisions.answer(job(2), failed("INVALID_SIGNATURE"), &mut stop);
    assert_eq!(kinds(&actions), [("settle", 2, Some(Status::U))]);
    assert_eq!(
        stop,
        Some(StopReason::Configuration("INVALID_SIGNATURE".into()))
    );
}

#[test]
fn param_illegal_answers_are_held_until_the_rule_decides() {
    // Twenty in a row: the request is at fault, every row stays U.
    let mut decisions = Decisions::new(&settings());
    let mut stop = None;
    for line in 1..PARAM_ILLEGAL_RULE {
        let actions = decisions.answer(job(line), failed("PARAM_ILLEGAL"), &mut stop);
        assert_eq!(kinds(&actions), [("provisional", line, None)]);
    }
    let actions = decisions.answer(job(20), failed("PARAM_ILLEGAL"), &mut stop);
    assert_eq!(actions.len(), 1 + PARAM_ILLEGAL_RULE as usize);
    assert!(
        kinds(&actions)[1..]
            .iter()
            .all(|(kind, _, status)| *kind == "settle" && *status == Some(Status::U))
    );
    assert!(matches!(stop, Some(StopReason::RequestRejected(_))));
    let late = decisions.answer(job(21), failed("PARAM_ILLEGAL"), &mut stop);
    assert_eq!(kinds(&late), [("settle", 21, Some(Status::U))]);

    // Another answer first: the held ones are the rows' own F.
    let mut decisions = Decisions::new(&settings());
    let mut stop = None;
    decisions.answer(job(1), failed("PARAM_ILLEGAL"), &mut stop);
    decisions.answer(job(2), failed("PARAM_ILLEGAL"), &mut stop);
    let actions = decisions.answer(job(3), success(), &mut stop);
    assert_eq!(
        kinds(&actions),
        [
            ("recover", 0, None),
            ("settle", 1, Some(Status::F)),
            ("settle", 2, Some(Status::F)),
            ("settle", 3, Some(Status::S)),
        ]
    );
    assert_eq!(stop, None);

    // Fewer answers than the rule needs: final at the end.
    let mut decisions = Decisions::new(&settings());
    decisions.answer(job(1), failed("PARAM_ILLEGAL"), &mut None);
    assert_eq!(kinds(&decisions.finish()), [("settle", 1, Some(Status::F))]);
}

#[test]
fn with_an_outage_wait_the_breaker_holds_the_rows_and_an_answer_ends_the_wait() {
    let riding = RunSettings {
        outage_wait: Duration::from_secs(600),
        ..settings()
    };
    let mut decisions = Decisions::new(&riding);
    let mut stop = None;
    for line in 2..5 {
        decisions.answer(
            job(line),
            DeclareOutcome::unknown("CONNECTION_ERROR", "refused"),
            &mut stop,
        );
    }
    let actions = decisions.answer(
        job(5),
        DeclareOutcome::unknown("HTTP_503", "down"),
        &mut stop,
    );
    assert_eq!(kinds(&actions), [("down", 0, None), ("hold", 5, None)]);
    assert_eq!(stop, None, "the run waits instead of stopping");
    assert!(decisions.endpoint_down());
    let mut row = take_job(actions);
    assert_eq!(row.attempts_used, 0, "the endpoint's fault uses no attempt");
    // Probes that fail keep the row held, however many.
    for _ in 0..10 {
        let actions = decisions.answer(row, DeclareOutcome::unknown("TIMEOUT", "t"), &mut stop);
        assert_eq!(kinds(&actions), [("hold", 5, None)]);
        row = take_job(actions);
    }
    assert_eq!(row.attempts_used, 0);
    let actions = decisions.answer(row, success(), &mut stop);
    assert_eq!(
        kinds(&actions),
        [
            ("back", 0, None),
            ("recover", 0, None),
            ("settle", 5, Some(Status::S))
        ]
    );
    assert!(!decisions.endpoint_down());
    // The count starts again: three unknowns do not reopen it.
    for line in 6..9 {
        let actions = decisions.answer(
            job(line),
            DeclareOutcome::unknown("TIMEOUT", "t"),
            &mut stop,
        );
        assert_eq!(kinds(&actions), [("retry", line, None)]);
    }
    // A wait that runs out stops the run, naming how long and the last cause.
    decisions.answer(job(9), DeclareOutcome::unknown("TIMEOUT", "t"), &mut stop);
    decisions.give_up(Duration::from_secs(600), &mut stop);
    assert_eq!(
        stop,
        Some(StopReason::OutageOutlasted {
            waited_secs: 600,
            last_cause: "TIMEOUT: t".into()
        })
    );
    assert!(stop.unwrap().describe().contains("no answer for 600 s"));
}

#[test]
fn a_traffic_limit_answer_also_ends_the_wait() {
    let riding = RunSettings {
        outage_wait: Duration::from_secs(5),
        ..settings()
    };
    let mut decisions = Decisions::new(&riding);
    let mut stop = None;
    for line in 2..6 {
        decisions.answer(
            job(line),
            DeclareOutcome::unknown("HTTP_500", "x"),
            &mut stop,
        );
    }
    assert!(decisions.endpoint_down());
    let actions = decisions.answer(
        job(7),
        DeclareOutcome::unknown("REQUEST_TRAFFIC_EXCEED_LIMIT", "too fast"),
        &mut stop,
    );
    assert_eq!(kinds(&actions), [("back", 0, None), ("slow", 7, None)]);
}

#[test]
fn a_last_row_out_of_attempts_against_a_dead_endpoint_waits_for_it() {
    let riding = RunSettings {
        outage_wait: Duration::from_secs(600),
        breaker_threshold: 20,
        ..settings()
    };
    let mut decisions = Decisions::new(&riding);
    let mut stop = None;
    let mut row = job(2);
    for _ in 0..2 {
        let actions = decisions.answer(
            row,
            DeclareOutcome::unknown("CONNECTION_ERROR", "refused"),
            &mut stop,
        );
        assert_eq!(kinds(&actions), [("retry", 2, None)]);
        row = take_job(actions);
    }
    let actions = decisions.answer(
        row,
        DeclareOutcome::unknown("CONNECTION_ERROR", "refused"),
        &mut stop,
    );
    assert_eq!(kinds(&actions), [("down", 0, None), ("hold", 2, None)]);
    assert_eq!(stop, None);
    // A row's own unknown answer (the endpoint answered) is settled U.
    let mut decisions = Decisions::new(&riding);
    let mut row = job(3);
    for _ in 0..2 {
        row = take_job(decisions.answer(
            row,
            DeclareOutcome::unknown("UNKNOWN_EXCEPTION", "u"),
            &mut stop,
        ));
    }
    let actions = decisions.answer(
        row,
        DeclareOutcome::unknown("UNKNOWN_EXCEPTION", "u"),
        &mut stop,
    );
    assert_eq!(kinds(&actions), [("settle", 3, Some(Status::U))]);
}
