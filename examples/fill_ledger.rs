//! A year in a ledger, for the ledger benchmark (`scripts/bench_ledger_year.sh`,
//! BENCHMARKS.md): `fill` writes NIGHTS runs of PER_NIGHT declarations each
//! through the ledger's own writer (the path a run takes), every one
//! answered S with the sandbox's answer, then dates the nights one day apart
//! ending yesterday, records a customs outcome for those older than a week
//! through the ledger, as `inquire --ledger` does, and drops the raw answers older than 90 days, as
//! the nights' ends would have. `lookups` times the send decision of N rows the
//! ledger has never seen (the nightly case: two index lookups each).
//!
//! `fill_ledger fill LEDGER ENDPOINT CLIENT_ID NIGHTS PER_NIGHT`
//! `fill_ledger lookups LEDGER ENDPOINT CLIENT_ID N`

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use declare_batch::ledger::{CustomsOutcome, Ledger};
use declare_batch::outcome::{ResultRow, Status};
use declare_batch::protocol::{
    Amount, BuyerCertificate, Customs, DeclareRequest, IsSplit, MerchantCustomsInfo,
};

const CUSTOMS: [&str; 4] = ["ZONGSHU", "ZHENGZHOU", "NINGBO", "SHANGHAI_CBT"];
const DAY_MS: i64 = 86_400_000;

/// The `index`th order of the year, shaped as `gen_bench` shapes them:
/// a quarter split, 40 % with a certificate, 100 merchants.
fn request(prefix: &str, index: u64) -> DeclareRequest {
    let split = index.is_multiple_of(4);
    DeclareRequest {
        payment_request_id: format!("{prefix}P{index:020}"),
        customs_declaration_request_id: format!("{prefix}D{index:020}"),
        customs: Customs {
            customs_code: CUSTOMS[(index % 4) as usize].to_owned(),
            region: "CN".to_owned(),
        },
        merchant_customs_info: MerchantCustomsInfo {
            merchant_customs_code: format!("33019{:05}", index % 100),
            merchant_customs_name: "杭州优选跨境贸易有限公司".to_owned(),
        },
        declaration_amount: Amount {
            currency: "CNY".to_owned(),
            value: (100 + index * 37 % 500_000).to_string(),
        },
        is_split: IsSplit::from(split),
        reference_order_id: split.then(|| format!("{prefix}O{index:020}-1")),
        buyer_certificate: (index % 5 < 2).then(|| BuyerCertificate {
            certificate_type: "ID_CARD".to_owned(),
            certificate_no: format!(
                "{:06}19500101{:03}X",
                110_000 + index % 90_000,
                index % 1000
            ),
            holder_name: None,
            effective_date: None,
            expire_date: None,
        }),
    }
}

/// The sandbox's answer to `request`, and the result a run makes of it.
fn answered(request: &DeclareRequest, row: u64, index: u64) -> (ResultRow, String) {
    let result = ResultRow {
        row,
        payment_request_id: request.payment_request_id.clone(),
        customs_declaration_request_id: request.customs_declaration_request_id.clone(),
        customs_code: request.customs.customs_code.clone(),
        declaration_amount: request.declaration_amount.value.clone(),
        result_status: Status::S,
        result_code: "SUCCESS".to_owned(),
        result_message: "Success".to_owned(),
        psp_payment_id: format!("2000{index:020}"),
        psp_declaration_request_id: format!("2026{index:024}"),
        psp_customs_code: "31222699S7".to_owned(),
        clearing_channel: "CUP".to_owned(),
        clearing_transaction_id: format!("0000{index:020}"),
        psp_order_amount: request.declaration_amount.value.clone(),
        identity_check_result: if request.buyer_certificate.is_some() {
            "CHECK_PASSED".to_owned()
        } else {
            String::new()
        },
        ..ResultRow::default()
    };
    let mut answer = serde_json::json!({
        "result": {"resultCode": "SUCCESS", "resultMessage": "Success", "resultStatus": "S"},
        "pspPaymentId": result.psp_payment_id,
        "pspDeclarationRequestId": result.psp_declaration_request_id,
        "pspCustomsCode": result.psp_customs_code,
        "clearingTransactionId": result.clearing_transaction_id,
        "clearingChannel": result.clearing_channel,
        "pspOrderAmount": {"currency": "CNY", "value": result.psp_order_amount},
    });
    if !result.identity_check_result.is_empty() {
        answer["identityCheckResult"] = result.identity_check_result.clone().into();
    }
    (result, answer.to_string())
}

fn fill(
    path: &Path,
    endpoint: &str,
    client_id: &str,
    nights: u64,
    per_night: u64,
) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    for night in 0..nights {
        let mut ledger = Ledger::open(path, endpoint, client_id)?;
        let out = std::env::temp_dir().join(format!("night-{night:03}"));
        ledger.begin_run(&out, Path::new("orders.csv"), &format!("sha-{night}"))?;
        let writer = ledger.writer()?;
        for n in 0..per_night {
            let index = night * per_night + n;
            let request = request("Y", index);
            let body = request.to_body();
            writer.call(n + 2, &request, &body, false);
            let (result, answer) = answered(&request, n + 2, index);
            writer.outcome(result, &request, &body, &answer, Box::new(|_| {}));
        }
        writer.finish();
        ledger.finish_run(0, 0, Duration::from_secs(90 * 86_400))?;
        if night % 50 == 49 {
            eprintln!("{} nights in {:.0?}", night + 1, started.elapsed());
        }
    }
    // One night apart, the last one yesterday; a week back and older has
    // its customs outcome.
    let connection = rusqlite::Connection::open(path)?;
    let last: i64 = connection.query_row("SELECT max(id) FROM runs", [], |row| row.get(0))?;
    let now = chrono::Utc::now().timestamp_millis();
    let week_ago = now - 7 * DAY_MS;
    // What the nightly runs' ends would have dropped (raw answers kept 90 days).
    let keep_from = now - 90 * DAY_MS;
    connection.execute_batch(&format!(
        "BEGIN;
         UPDATE declarations SET settled_at = settled_at - ({last} - run_id + 1) * {DAY_MS};
         UPDATE calls SET sent_at = sent_at - ({last} - run_id + 1) * {DAY_MS},
                          answered_at = answered_at - ({last} - run_id + 1) * {DAY_MS};
         UPDATE calls SET answer_shape = NULL, answer_values = NULL, answer_text = NULL
          WHERE answered_at < {keep_from};
         COMMIT;"
    ))?;
    let runs: Vec<(i64, String)> = connection
        .prepare("SELECT id, started_at FROM runs")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, started_at) in runs {
        let started_at = chrono::DateTime::parse_from_rfc3339(&started_at)?
            - chrono::Duration::days(last - id + 1);
        let text = started_at
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        connection.execute(
            "UPDATE runs SET started_at = ?2, finished_at = ?2 WHERE id = ?1",
            rusqlite::params![id, text],
        )?;
    }
    // The customs outcomes of the nights older than a week, recorded as
    // `inquire --ledger` records them (an inquiry row each, and the
    // declaration's outcome).
    let inquired: Vec<String> = connection
        .prepare("SELECT request_id FROM declarations WHERE settled_at < ?1 ORDER BY id")?
        .query_map([week_ago], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let ledger = Ledger::open(path, endpoint, client_id)?;
    for request_id in inquired {
        ledger.record_inquiry(&CustomsOutcome {
            request_id,
            status: "CUSTOMS_ACCEPT_SUCCESS".to_owned(),
            result_code: "ACCEPTED".to_owned(),
            result_description: "accepted".to_owned(),
            returned_time: "2026-01-01 10:00:00".to_owned(),
            modified_time: "2026-01-01 10:00:00".to_owned(),
        })?;
    }
    drop(ledger);
    connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let declarations: i64 =
        connection.query_row("SELECT count(*) FROM declarations", [], |row| row.get(0))?;
    let size = std::fs::metadata(path)?.len();
    println!(
        "{declarations} declarations in {:.1?}: {:.1} MB, {} bytes each",
        started.elapsed(),
        size as f64 / 1e6,
        size / declarations.max(1) as u64
    );
    Ok(())
}

fn lookups(path: &Path, endpoint: &str, client_id: &str, n: u64) -> Result<(), Box<dyn Error>> {
    let ledger = Ledger::open(path, endpoint, client_id)?;
    let requests: Vec<(DeclareRequest, Vec<u8>)> = (0..n)
        .map(|index| {
            let request = request("NEW", index);
            let body = request.to_body();
            (request, body)
        })
        .collect();
    let now = chrono::Utc::now();
    let started = Instant::now();
    let mut sent = 0;
    for (request, body) in &requests {
        let decision = ledger.decide(request, body, now, Duration::from_secs(300), false)?;
        if matches!(decision, declare_batch::ledger::Decision::Send { .. }) {
            sent += 1;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{n} decisions ({sent} to send) in {:.1} ms: {:.1} µs each",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // The scope as a run writes it: the endpoint's URL normalised.
    if let Some(endpoint) = args.get_mut(2) {
        *endpoint = reqwest::Url::parse(endpoint)?.to_string();
    }
    match args.as_slice() {
        [mode, path, endpoint, client_id, nights, per_night] if mode == "fill" => fill(
            Path::new(path),
            endpoint,
            client_id,
            nights.parse()?,
            per_night.parse()?,
        ),
        [mode, path, endpoint, client_id, n] if mode == "lookups" => {
            lookups(Path::new(path), endpoint, client_id, n.parse()?)
        }
        _ => Err(
            "usage: fill_ledger fill LEDGER ENDPOINT CLIENT_ID NIGHTS PER_NIGHT | \
                  fill_ledger lookups LEDGER ENDPOINT CLIENT_ID N"
                .into(),
        ),
    }
}
