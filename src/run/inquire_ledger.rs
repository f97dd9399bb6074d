//! `inquire --ledger`: asks Alipay+ about every declaration of a ledger's
//! scope still open across runs — U, or S whose customs outcome has not come
//! back — ten IDs a call within the inquiry's rate, page by page so that a
//! year's ledger is never held in memory. Each answer is recorded in the
//! ledger; a U declaration Alipay+ holds with its own customs code, amount
//! and order reference becomes S there (the run folders are not touched:
//! `inquire OUT_DIR` settles a run's own files).

use std::path::Path;

use anyhow::{Context, bail};

use super::inquire::{Asker, IDS_PER_CALL, InquiryReport, holds_content};
use crate::client::DeclareClient;
use crate::ledger::{Ledger, LedgerLease};
use crate::outcome::Status;
use crate::protocol::Endpoint;
use crate::settings::Settings;

/// Declarations read from the ledger at a time.
const PAGE: u32 = 1000;

/// Inquires about every open declaration of the settings' scope in the
/// ledger at `ledger_path`, settled or last sent on or after `since`
/// (RFC 3339 UTC), holding the scope's lease (waiting up to `wait`).
pub async fn inquire_ledger(
    ledger_path: &Path,
    settings: &Settings,
    since: Option<&str>,
    wait: std::time::Duration,
    mut notice: impl FnMut(&str),
) -> anyhow::Result<LedgerInquiry> {
    if matches!(settings.endpoint()?, Endpoint::EmbeddedSandbox) {
        bail!(
            "the embedded sandbox is gone with each run: there is nothing to ask. Give the \
             --config of the endpoint the runs declared to"
        );
    }
    if !ledger_path.exists() {
        bail!(
            "there is no ledger at {}; give --ledger PATH, or the --config the runs used",
            ledger_path.display()
        );
    }
    let (endpoint, client_id) = settings.scope()?;
    let api = settings.remote_api()?;
    let verification = settings.response_verification()?;
    if let Some(warning) = verification.warning(api.base.as_str()) {
        tracing::warn!("{warning}");
    }
    let client = DeclareClient::new(api)?;
    let _lease = LedgerLease::take(
        ledger_path,
        &endpoint,
        &client_id,
        "inquire --ledger",
        ledger_path,
        wait,
    )?;
    let ledger = Ledger::open(ledger_path, &endpoint, &client_id)?;
    let asker = Asker::new(&client, &settings.inquiry);
    let mut report = InquiryReport::default();
    let mut after = String::new();
    loop {
        let page = ledger.open_declarations(since, &after, PAGE)?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.request_id);
        for batch in page.chunks(IDS_PER_CALL) {
            let asked: Vec<&str> = batch.iter().map(|d| d.request_id.as_str()).collect();
            let Some(response) = asker.ask(&asked, &mut report).await else {
                continue;
            };
            for record in &response.declaration_records {
                let Some(id) = record.customs_declaration_request_id.as_deref() else {
                    continue;
                };
                let Some(declaration) = batch.iter().find(|d| d.request_id == id) else {
                    continue;
                };
                let outcome = report.count(id, record);
                ledger.record_inquiry(&outcome)?;
                if declaration.status != Status::U {
                    continue;
                }
                if holds_content(
                    record,
                    &declaration.customs_code,
                    &declaration.amount,
                    &declaration.reference_order_id,
                ) {
                    let text = |value: &Option<String>| value.clone().unwrap_or_default();
                    ledger
                        .settle_unknown_by_inquiry(
                            id,
                            &text(&record.psp_payment_id),
                            &text(&record.psp_declaration_request_id),
                            &format!(
                                "declared: Alipay+ holds this request \
                                 (inquireDeclarationRequests: {})",
                                outcome.status
                            ),
                        )
                        .context("cannot settle a declaration in the ledger")?;
                    report.settled += 1;
                } else {
                    notice(&format!(
                        "{id}: Alipay+ holds it with another customs code or amount; it stays \
                         unknown in the ledger"
                    ));
                }
            }
            report.not_found += response.declaration_requests_not_found.len() as u64;
        }
    }
    // What is still open now, across every run.
    let runs = ledger.status(None)?;
    report.still_unknown = runs.iter().map(|run| run.unknown).sum();
    Ok(LedgerInquiry {
        report,
        customs_pending: runs.iter().map(|run| run.customs_pending).sum(),
    })
}

/// What an inquiry across the ledger came to.
#[derive(Debug)]
pub struct LedgerInquiry {
    pub report: InquiryReport,
    /// Declarations S whose customs outcome is still pending afterwards.
    pub customs_pending: u64,
}
