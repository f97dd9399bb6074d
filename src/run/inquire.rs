//! Asking Alipay+ what it holds for a run's rows
//! (`inquireDeclarationRequests`): the customs outcome of every S and U row
//! into `customs.csv` and the ledger, and the settling of U rows that
//! Alipay+ knows as declared with the row's own customs code and amount —
//! they become S with `source` = `inquiry`, journaled so that a resume
//! keeps them, and leave `retry.csv`. Nothing is declared again. Shared by
//! `declare-batch inquire` and `run --resolve-unknown`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::num::NonZeroU32;
use std::path::Path;

use anyhow::{Context, bail};
use governor::{Quota, RateLimiter};
use serde::Serialize;

use crate::client::DeclareClient;
use crate::declare::{Journal, backoff};
use crate::input::{OwnedRow, UTF8_BOM};
use crate::ledger::{CustomsOutcome, Ledger};
use crate::outcome::{ResultRow, ResultSource, Status, StatusCounts, codes};
use crate::outdir::OutLock;
use crate::protocol::{DeclarationRecord, DeclareOutcome};
use crate::protocol::{EMBEDDED_ENDPOINT, parse_endpoint};
use crate::report::{
    AtomicFile, RESULT_HEADER, read_output_csv, result_from_record, timestamp, write_retry_xlsx,
};
use crate::run::RunRecord;
pub use crate::settings::InquirySettings;
use crate::settings::Settings;

/// IDs per inquiry: the API takes at most 10.
pub const IDS_PER_CALL: usize = 10;

/// The columns of `customs.csv` (contract).
pub const CUSTOMS_HEADER: [&str; 11] = [
    "row",
    "customsDeclarationRequestId",
    "paymentRequestId",
    "referenceOrderId",
    "customsCode",
    "declarationRequestStatus",
    "customsResultCode",
    "customsResultDescription",
    "customsResultReturnedTime",
    "modifiedTime",
    "inquiredAt",
];

/// The status written to `customs.csv` for an ID Alipay+ does not know.
pub const NOT_FOUND: &str = "NOT_FOUND";

/// What the inquiries came to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InquiryReport {
    /// Request IDs asked about, and calls made.
    pub asked: u64,
    pub calls: u64,
    /// IDs Alipay+ knows, by `declarationRequestStatus`.
    pub by_status: BTreeMap<String, u64>,
    /// Customs results among them, by `customsResultCode` (with its
    /// description where Alipay+ gives one).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub customs_results: BTreeMap<String, CustomsResultCount>,
    pub not_found: u64,
    /// U rows settled as S.
    pub settled: u64,
    /// U rows still U (not known, known with another content, or not asked
    /// because the inquiry kept failing).
    pub still_unknown: u64,
    /// U rows Alipay+ knows with another customs code or amount: left U.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differing_rows: Vec<u64>,
    /// IDs whose inquiry failed after every attempt.
    pub failed: u64,
    /// The run's rows by status, and by result code, after the inquiry.
    #[serde(skip)]
    pub results: StatusCounts,
    #[serde(skip)]
    pub codes: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// How many declarations customs answered with one result code, and what
/// the code says.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct CustomsResultCount {
    pub count: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl InquiryReport {
    /// The customs results as one line: `CODE n (description), …`.
    pub fn customs_results_line(&self) -> String {
        if self.customs_results.is_empty() {
            return "none yet".to_owned();
        }
        self.customs_results
            .iter()
            .map(|(code, result)| match result.description.as_str() {
                "" => format!("{code} {}", result.count),
                description => format!("{code} {} ({description})", result.count),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The results of a run's folder, as written.
fn read_results(path: &Path) -> anyhow::Result<Vec<ResultRow>> {
    let mut reader = read_output_csv(path).with_context(|| {
        format!(
            "cannot read {}; a run that stopped before writing it is finished by running the \
             same run command again",
            path.display()
        )
    })?;
    reader
        .records()
        .map(|record| {
            record
                .and_then(|record| result_from_record(&record))
                .with_context(|| format!("{} is damaged", path.display()))
        })
        .collect()
}

/// Whether a record is the row's own declaration: the customs code, the
/// amount and the order reference it was sent with.
fn matches_row(record: &DeclarationRecord, row: &ResultRow) -> bool {
    holds_content(
        record,
        &row.customs_code,
        &row.declaration_amount,
        &row.reference_order_id,
    )
}

/// Whether a record holds this customs code, amount and order reference.
pub fn holds_content(
    record: &DeclarationRecord,
    customs_code: &str,
    amount: &str,
    reference_order_id: &str,
) -> bool {
    let customs = record
        .customs
        .as_ref()
        .is_some_and(|customs| customs.customs_code.eq_ignore_ascii_case(customs_code));
    let amount = record
        .declaration_amount
        .as_ref()
        .is_some_and(|declared| declared.value == amount);
    let reference = match record.reference_order_id.as_deref() {
        Some(reference) if !reference.is_empty() => reference == reference_order_id,
        _ => true,
    };
    customs && amount && reference
}

/// Which rows of a run an inquiry asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InquiryScope {
    /// Every row declared (S) or sent and left unknown, for their customs
    /// outcomes (`inquire`, the page).
    Declared,
    /// Only the rows sent and left unknown, to settle them
    /// (`run --resolve-unknown`).
    UnknownSent,
}

impl InquiryScope {
    /// Whether `row` is asked about. A row never sent (not sent because the
    /// run stopped, or a correction waiting) has nothing to ask.
    pub fn asks_about(self, row: &ResultRow) -> bool {
        let sent_unknown = row.result_status == Status::U && row.attempts > 0;
        match self {
            InquiryScope::Declared => row.result_status == Status::S || sent_unknown,
            InquiryScope::UnknownSent => sent_unknown,
        }
    }
}

/// The inquiry of a run's folder as `inquire` and the page make it: the
/// folder's lock taken, its `run.json` read (a run of the embedded sandbox
/// is refused: that sandbox is gone), the settings checked to be the
/// run's, the inquiry recorded as a run in the ledger, every S and U row
/// asked about, and `summary.json` brought up to date.
pub async fn inquire_recorded_run(
    out: &Path,
    settings: &Settings,
    wait: std::time::Duration,
    notice: impl FnMut(&str),
) -> anyhow::Result<InquiryReport> {
    if !out.join("run.json").exists() {
        bail!(
            "{} holds no run (no run.json); give the --out folder of a declare-batch run",
            out.display()
        );
    }
    let _lock = OutLock::take(out, "inquire")?;
    let record = RunRecord::read(out)
        .with_context(|| format!("{} is damaged", out.join("run.json").display()))?;
    if record.endpoint == EMBEDDED_ENDPOINT {
        bail!(
            "the run in {} declared to the embedded sandbox, which is gone with its run: there \
             is nothing to ask. Use run --resolve-unknown to inquire while it runs",
            out.display()
        );
    }
    if record.endpoint.is_empty() {
        bail!(
            "the run in {} was made by an earlier version that did not record its endpoint; run \
             the same run command again with this version first",
            out.display()
        );
    }
    let ledger_path = settings.ledger.for_recorded_run(record.ledger.as_deref());
    let client = client_for_run(&record, settings)?;
    let _lease = crate::ledger::LedgerLease::take(
        &ledger_path,
        &record.endpoint,
        &record.client_id,
        "inquire",
        out,
        wait,
    )?;
    let mut ledger = Ledger::open(&ledger_path, &record.endpoint, &record.client_id)?;
    ledger.begin_run(out, Path::new(&record.input), "")?;
    let (mut journal, _) = Journal::open(&out.join("journal.jsonl"))?;
    let report = inquire_folder(
        out,
        &client,
        &ledger,
        &mut journal,
        &settings.inquiry,
        InquiryScope::Declared,
        notice,
    )
    .await?;
    update_summary(out, &report)?;
    // The report shows the customs results and the settled rows too.
    super::summary::redraw_report(out, settings.language)?;
    Ok(report)
}

/// Inquires about every S and U row of the run in `out` and settles the U
/// rows Alipay+ knows. The caller holds the folder's lock and the journal.
pub async fn inquire_folder(
    out: &Path,
    client: &DeclareClient,
    ledger: &Ledger,
    journal: &mut Journal,
    settings: &InquirySettings,
    scope: InquiryScope,
    mut notice: impl FnMut(&str),
) -> anyhow::Result<InquiryReport> {
    let results_path = out.join("results.csv");
    let mut results = read_results(&results_path)?;
    let mut report = InquiryReport::default();
    // The rows asked about, by request ID (a request ID is one row of a run).
    let mut rows_of: HashMap<String, Vec<usize>> = HashMap::new();
    let mut ids: Vec<String> = Vec::new();
    for (index, row) in results.iter().enumerate() {
        if !scope.asks_about(row) {
            continue;
        }
        let id = row.customs_declaration_request_id.clone();
        let entry = rows_of.entry(id.clone()).or_default();
        if entry.is_empty() {
            ids.push(id);
        }
        entry.push(index);
    }
    let asker = Asker::new(client, settings);
    let mut customs_lines: Vec<Vec<String>> = Vec::new();
    let mut settled_rows: Vec<u64> = Vec::new();
    for batch in ids.chunks(IDS_PER_CALL) {
        let asked: Vec<&str> = batch.iter().map(String::as_str).collect();
        let Some(response) = asker.ask(&asked, &mut report).await else {
            continue;
        };
        let inquired_at = timestamp(chrono::Local::now());
        for record in &response.declaration_records {
            let Some(id) = record.customs_declaration_request_id.as_deref() else {
                continue;
            };
            let Some(indexes) = rows_of.get(id) else {
                continue;
            };
            let outcome = report.count(id, record);
            ledger.record_inquiry(&outcome)?;
            for &index in indexes {
                let row = &mut results[index];
                customs_lines.push(customs_line(row, &outcome, &inquired_at));
                if row.result_status != Status::U {
                    continue;
                }
                if !matches_row(record, row) {
                    report.differing_rows.push(row.row);
                    notice(&format!(
                        "row {}: Alipay+ holds {} with another customs code or amount; it stays \
                         unknown (see customs.csv)",
                        row.row, row.customs_declaration_request_id
                    ));
                    continue;
                }
                row.result_status = Status::S;
                row.result_code = codes::SUCCESS.to_owned();
                row.result_message = format!(
                    "declared: Alipay+ holds this request (inquireDeclarationRequests: {})",
                    outcome.status
                );
                let text = |value: &Option<String>| value.clone().unwrap_or_default();
                row.psp_declaration_request_id = text(&record.psp_declaration_request_id);
                row.psp_payment_id = text(&record.psp_payment_id);
                row.source = ResultSource::Inquiry;
                // Journaled, then in the ledger, then written out.
                let record_text = serde_json::to_string(record).unwrap_or_default();
                journal
                    .settled(row, &record_text)
                    .context("cannot write the journal")?;
                ledger.settle_by_inquiry(row)?;
                settled_rows.push(row.row);
                report.settled += 1;
            }
        }
        for id in &response.declaration_requests_not_found {
            let Some(indexes) = rows_of.get(id.as_str()) else {
                continue;
            };
            report.not_found += 1;
            let outcome = CustomsOutcome {
                request_id: id.clone(),
                status: NOT_FOUND.to_owned(),
                ..CustomsOutcome::default()
            };
            for &index in indexes {
                customs_lines.push(customs_line(&results[index], &outcome, &inquired_at));
            }
        }
    }
    journal.sync().context("cannot write the journal")?;
    for row in &results {
        report.results.add(row.result_status);
        *report.codes.entry(row.result_code.clone()).or_default() += 1;
    }
    report.still_unknown = report.results.unknown;
    write_results(&results_path, &results)?;
    remove_from_retry(out, &results, &settled_rows)?;
    customs_lines.sort_by_key(|line| line[0].parse::<u64>().unwrap_or(0));
    write_customs(&out.join("customs.csv"), &customs_lines)?;
    Ok(report)
}

/// Asks Alipay+ about batches of request IDs within the inquiry's rate,
/// retrying what may change by asking again.
pub struct Asker<'a> {
    client: &'a DeclareClient,
    settings: &'a InquirySettings,
    limiter: Option<governor::DefaultDirectRateLimiter>,
}

impl<'a> Asker<'a> {
    pub fn new(client: &'a DeclareClient, settings: &'a InquirySettings) -> Asker<'a> {
        Asker {
            client,
            settings,
            limiter: NonZeroU32::new(settings.rate_per_sec)
                .map(|rate| RateLimiter::direct(Quota::per_second(rate))),
        }
    }

    /// The answer about `asked` (at most [`IDS_PER_CALL`]), counted in
    /// `report`; `None` when every attempt failed (counted as failed).
    pub async fn ask(
        &self,
        asked: &[&str],
        report: &mut InquiryReport,
    ) -> Option<crate::protocol::InquiryResponse> {
        report.asked += asked.len() as u64;
        for attempt in 1..=self.settings.max_attempts.max(1) {
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            report.calls += 1;
            match self.client.inquire(asked).await {
                Ok(response) => return Some(response),
                Err(outcome) => {
                    let cause = format!("{}: {}", outcome.code(), outcome_message(&outcome));
                    report.last_failure = Some(cause);
                    // A refusal (F) will not change by asking again.
                    if outcome.status() == Status::F {
                        break;
                    }
                    if attempt < self.settings.max_attempts {
                        tokio::time::sleep(backoff(self.settings.backoff_base, attempt)).await;
                    }
                }
            }
        }
        report.failed += asked.len() as u64;
        None
    }
}

impl InquiryReport {
    /// What Alipay+ holds for `id`, counted by status and customs result.
    pub fn count(&mut self, id: &str, record: &DeclarationRecord) -> CustomsOutcome {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let outcome = CustomsOutcome {
            request_id: id.to_owned(),
            status: text(&record.declaration_request_status),
            result_code: text(&record.customs_result_code),
            result_description: text(&record.customs_result_description),
            returned_time: text(&record.customs_result_returned_time),
            modified_time: text(&record.modified_time),
        };
        *self.by_status.entry(outcome.status.clone()).or_default() += 1;
        if !outcome.result_code.is_empty() {
            let count = self
                .customs_results
                .entry(outcome.result_code.clone())
                .or_default();
            count.count += 1;
            if count.description.is_empty() {
                count.description.clone_from(&outcome.result_description);
            }
        }
        outcome
    }
}

fn outcome_message(outcome: &DeclareOutcome) -> &str {
    match outcome {
        DeclareOutcome::Success(response) => {
            response.result.result_message.as_deref().unwrap_or("")
        }
        DeclareOutcome::Failed { message, .. } | DeclareOutcome::Unknown { message, .. } => message,
    }
}

fn customs_line(row: &ResultRow, outcome: &CustomsOutcome, inquired_at: &str) -> Vec<String> {
    vec![
        row.row.to_string(),
        row.customs_declaration_request_id.clone(),
        row.payment_request_id.clone(),
        row.reference_order_id.clone(),
        row.customs_code.clone(),
        outcome.status.clone(),
        outcome.result_code.clone(),
        outcome.result_description.clone(),
        outcome.returned_time.clone(),
        outcome.modified_time.clone(),
        inquired_at.to_owned(),
    ]
}

/// Rewrites `results.csv` in place, atomically.
fn write_results(path: &Path, results: &[ResultRow]) -> anyhow::Result<()> {
    let write = || -> std::io::Result<()> {
        let mut file = AtomicFile::create(path)?;
        file.write_all(UTF8_BOM)?;
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        csv.write_record(RESULT_HEADER)?;
        for row in results {
            crate::report::spreadsheet_safe::serialize(&mut csv, row)?;
        }
        csv.into_inner().map_err(|e| e.into_error())?.commit()
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

fn write_customs(path: &Path, lines: &[Vec<String>]) -> anyhow::Result<()> {
    let write = || -> std::io::Result<()> {
        let mut file = AtomicFile::create(path)?;
        file.write_all(UTF8_BOM)?;
        let mut csv = csv::Writer::from_writer(file);
        csv.write_record(CUSTOMS_HEADER)?;
        for line in lines {
            crate::report::spreadsheet_safe::write_record(&mut csv, line)?;
        }
        csv.into_inner().map_err(|e| e.into_error())?.commit()
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// Takes the settled rows out of `retry.csv` (and `retry.xlsx`). Its rows
/// are the U rows of `results.csv`, in the same (row) order.
fn remove_from_retry(out: &Path, results: &[ResultRow], settled: &[u64]) -> anyhow::Result<()> {
    if settled.is_empty() {
        return Ok(());
    }
    let retry_path = out.join("retry.csv");
    let mut reader = read_output_csv(&retry_path)
        .with_context(|| format!("cannot read {}", retry_path.display()))?;
    let headers: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    // The rows that were U before this inquiry, in row order.
    let unknown_before: Vec<u64> = results
        .iter()
        .filter(|row| row.result_status == Status::U || settled.contains(&row.row))
        .map(|row| row.row)
        .collect();
    if unknown_before.len() != records.len() {
        bail!(
            "{} holds {} rows but results.csv {} unknown ones; run the same run command again \
             to rewrite them, then inquire",
            retry_path.display(),
            records.len(),
            unknown_before.len()
        );
    }
    let kept: Vec<OwnedRow> = records
        .iter()
        .zip(&unknown_before)
        .filter(|(_, row)| !settled.contains(row))
        .map(|(record, &row)| {
            let cells: Vec<&str> = record.iter().collect();
            OwnedRow::from_texts(row, &cells)
        })
        .collect();
    if out.join("retry.xlsx").exists() {
        write_retry_xlsx(&out.join("retry.xlsx"), &headers, &kept)
            .with_context(|| format!("cannot write {}", out.join("retry.xlsx").display()))?;
    }
    crate::report::write_retry(&retry_path, &headers, kept)
        .with_context(|| format!("cannot write {}", retry_path.display()))
}

/// Brings a run's `summary.json` up to date after an inquiry: the statuses
/// and codes of its rows, the inquiry's counts, and the exit code they
/// mean now.
pub fn update_summary(out: &Path, report: &InquiryReport) -> anyhow::Result<u8> {
    let path = out.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut summary: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
    let rejected = summary["rows"]["rejected"].as_u64().unwrap_or(0);
    let exit_code = exit_code_for(&report.results, rejected);
    summary["results"] = serde_json::to_value(report.results)?;
    summary["codes"] = serde_json::to_value(&report.codes)?;
    summary["inquiry"] = serde_json::to_value(report)?;
    summary["exit_code"] = exit_code.into();
    crate::report::write_json(&path, &summary)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(exit_code)
}

/// The exit code of a finished run with these statuses (contract).
pub fn exit_code_for(results: &StatusCounts, rejected: u64) -> u8 {
    if results.unknown > 0 {
        crate::exit::UNFINISHED
    } else if results.failed > 0 || rejected > 0 {
        crate::exit::SOME_FAILED
    } else {
        crate::exit::SUCCESS
    }
}

/// The client for the run's endpoint and client ID with the settings'
/// keys; settings naming another endpoint or client ID are refused.
pub fn client_for_run(record: &RunRecord, settings: &Settings) -> anyhow::Result<DeclareClient> {
    let run_base = parse_endpoint(&record.endpoint)?;
    match settings.endpoint() {
        Ok(crate::protocol::Endpoint::Remote(base)) if *base != run_base => bail!(
            "the config declares to {base}, but the run declared to {run_base}; give the \
             config the run was made with"
        ),
        Ok(crate::protocol::Endpoint::EmbeddedSandbox) if settings.config_path.is_some() => bail!(
            "the config declares to the embedded sandbox, but the run declared to {run_base}; \
             give the config the run was made with"
        ),
        // No endpoint in the config: the run's is used.
        Ok(_) | Err(crate::protocol::EndpointError::NotSet) => {}
        Err(unusable) => return Err(unusable.into()),
    }
    if let Some(client_id) = settings.api.client_id.as_deref()
        && client_id != record.client_id
    {
        bail!(
            "the config's client ID is {client_id}, but the run's is {}; give the config the \
             run was made with",
            record.client_id
        );
    }
    let verification = settings.api.verification(&run_base)?;
    if let Some(warning) = verification.warning(run_base.as_str()) {
        tracing::warn!("{warning}");
    }
    let api = settings.api.client_settings(run_base, &record.client_id)?;
    Ok(DeclareClient::new(api)?)
}
