//! Validation as a library: every row of an input read and checked, its
//! rejected rows written (`rejected.csv`, `rejected.xlsx`), `summary.json`
//! and `report.html`, nothing sent. Driven by `declare-batch validate` and
//! the web page alike; `run --dry-run` also asks the ledger what it would
//! make of each valid row and writes the answers to `plan.csv`.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use chrono::Local;
use serde::Serialize;

use std::io::Write;

use crate::exit;
use crate::i18n::{Language, RowMessage};
use crate::ledger::{Decision, Ledger, Refusal};
use crate::outdir::{OutLock, refuse_run_folder};
use crate::protocol::DeclareRequest;
use crate::report::AtomicFile;
use crate::report::html::{ReportData, write_report};
use crate::report::{
    ProblemCount, ProblemTally, RejectedWriter, RowCounts, hex, timestamp, write_json,
};
use crate::settings::Settings;
use crate::validate::{
    CountedRow, CrossRowIndex, KeptRow, Outcome, ValidRow, Verdict, validate_stream,
};
use crate::validate::{Problem, RowRules};

/// `summary.json` of a validation.
#[derive(Debug, Serialize)]
pub struct ValidateSummary {
    pub command: &'static str,
    pub input: String,
    pub input_sha256: String,
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The row the headers were found on.
    pub header_row: u64,
    pub rows: RowCounts,
    pub errors: Vec<ProblemCount>,
    /// `run --dry-run`: what a run would do with the valid rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanCounts>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u128,
    pub exit_code: u8,
}

/// What `run --dry-run` asks the ledger with: the ledger of the run's
/// scope (`None`: there is none yet, so every row would be sent) and the
/// run's choices that change its decisions.
pub struct LedgerQuestion {
    pub ledger: Option<Ledger>,
    pub retransmit_wait: std::time::Duration,
    pub resend_failed: bool,
}

/// What a run would do with the rows that pass the field checks.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct PlanCounts {
    /// Sent: the ledger does not hold them.
    pub send: u64,
    /// Sent again under their declared ID: corrections.
    pub retransmit: u64,
    /// Not sent: the ledger holds the identical request's answer.
    pub from_ledger: u64,
    /// Corrections not sent yet: the retransmission wait is not over.
    pub too_early: u64,
    /// Rejected: the ledger holds a declaration they would contradict.
    pub rejected_by_ledger: u64,
}

/// Validates `input` into the folder `out` (locked meanwhile; a folder
/// that holds a run is refused).
pub fn validate_input(
    input: &Path,
    settings: &Settings,
    out: &Path,
) -> anyhow::Result<ValidateSummary> {
    check_input::<CountedRow>(input, settings, out, None, None, false)
}

/// Validates as [`validate_input`] does, and keeps the rejected rows'
/// reasons as codes and parameters in `reasons` (JSON lines), with their
/// cells in the fields' columns (certificate numbers masked), so that the
/// page can say them in the language of whoever reads them and offer them
/// to be corrected. With a ledger, rows it would refuse are rejected too,
/// as a run would.
pub fn validate_keeping_reasons(
    input: &Path,
    settings: &Settings,
    out: &Path,
    reasons: &Path,
    ledger: Option<LedgerQuestion>,
) -> anyhow::Result<ValidateSummary> {
    check_input::<Box<ValidRow>>(input, settings, out, ledger, Some(reasons), false)
}

/// `run --dry-run`: validates `input` into `out` as [`validate_input`]
/// does, asks the ledger about each valid row as a run would (sending
/// nothing, recording nothing) and writes `plan.csv`.
pub fn plan_input(
    input: &Path,
    settings: &Settings,
    out: &Path,
    question: LedgerQuestion,
) -> anyhow::Result<ValidateSummary> {
    check_input::<Box<ValidRow>>(input, settings, out, Some(question), None, true)
}

fn check_input<V: KeptRow>(
    input: &Path,
    settings: &Settings,
    out: &Path,
    question: Option<LedgerQuestion>,
    reasons_path: Option<&Path>,
    write_plan: bool,
) -> anyhow::Result<ValidateSummary> {
    let started_at = Local::now();
    let clock = Instant::now();
    let (mut source, rules) = super::open_input(input, &settings.input)?;
    crate::outdir::create_private_folder(out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;
    let _lock = OutLock::take(out, "validate")?;
    refuse_run_folder(out)?;
    let rejected_path = out.join("rejected.csv");
    let mut rejected = RejectedWriter::create(
        &rejected_path,
        source.headers(),
        rules.field_columns(),
        settings.language,
    )
    .with_context(|| format!("cannot write {}", rejected_path.display()))?;
    let mut counts = RowCounts::default();
    let mut tally = ProblemTally::default();
    let mut reasons = match reasons_path {
        Some(path) => Some(KeptReasons::create(path, &source, &rules)?),
        None => None,
    };
    let plan_path = out.join("plan.csv");
    let mut plan = match &question {
        Some(_) => Some(PlanWriter::create(
            write_plan.then_some(plan_path.as_path()),
        )?),
        None => None,
    };
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    validate_stream(
        &mut source,
        &rules,
        &mut CrossRowIndex::default(),
        workers,
        |outcome: Outcome<V>| -> anyhow::Result<()> {
            counts.read += 1;
            match outcome.verdict {
                Verdict::Valid(valid) => {
                    if let (Some(question), Some(plan), Some(request)) =
                        (&question, &mut plan, valid.request())
                    {
                        let refused = plan
                            .decide(
                                question,
                                &rules,
                                outcome.row.line,
                                request,
                                settings.language,
                            )
                            .with_context(|| format!("cannot write {}", plan_path.display()))?;
                        if let Some(problem) = refused {
                            let problems = [problem];
                            tally.add(&problems);
                            if let Some(reasons) = &mut reasons {
                                reasons.keep(&outcome.row, &problems)?;
                            }
                            return rejected.write(&outcome.row, &problems).with_context(|| {
                                format!("cannot write {}", rejected_path.display())
                            });
                        }
                    }
                    counts.valid += 1;
                    counts.long_term_id_cards += u64::from(valid.long_term_expiry());
                }
                Verdict::Totals => counts.add_totals_row(outcome.row.line),
                Verdict::Rejected(problems) => {
                    tally.add(&problems);
                    if let Some(reasons) = &mut reasons {
                        reasons.keep(&outcome.row, &problems)?;
                    }
                    rejected
                        .write(&outcome.row, &problems)
                        .with_context(|| format!("cannot write {}", rejected_path.display()))?;
                }
            }
            Ok(())
        },
    )?;
    counts.rejected = rejected.rows();
    counts.blank = source.blank_rows();
    counts.above_header = source.rows_above_header();
    rejected
        .commit()
        .with_context(|| format!("cannot write {}", rejected_path.display()))?;
    if let Some(reasons) = reasons {
        reasons.commit()?;
    }
    let plan = match plan {
        Some(plan) => Some(
            plan.commit()
                .with_context(|| format!("cannot write {}", plan_path.display()))?,
        ),
        None => None,
    }
    .filter(|_| write_plan);
    let exit_code = if counts.rejected == 0 {
        exit::SUCCESS
    } else {
        exit::SOME_FAILED
    };
    let summary = ValidateSummary {
        command: if plan.is_some() {
            "run --dry-run"
        } else {
            "validate"
        },
        input: input.display().to_string(),
        input_sha256: hex(&source.sha256()?),
        format: source.format().name(),
        encoding: source.encoding().map(|e| e.name()),
        sheet: source.sheet().map(str::to_owned),
        header_row: source.header_line(),
        rows: counts,
        errors: tally.sorted(),
        plan,
        started_at: timestamp(started_at),
        finished_at: timestamp(Local::now()),
        duration_ms: clock.elapsed().as_millis(),
        exit_code,
    };
    let summary_path = out.join("summary.json");
    write_json(&summary_path, &summary)
        .with_context(|| format!("cannot write {}", summary_path.display()))?;
    let no_codes = std::collections::BTreeMap::new();
    let report = ReportData {
        command: summary.command,
        input: &summary.input,
        endpoint: None,
        rows: &summary.rows,
        results: None,
        codes: &no_codes,
        problems: &summary.errors,
        identity_checks: &no_codes,
        per_second: &[],
        latency: None,
        started_at: &summary.started_at,
        duration_ms: summary.duration_ms,
        stopped: None,
        exit_code,
        language: settings.language,
        retransmitted: 0,
        waiting_for_retransmission: 0,
        customs_results: Vec::new(),
    };
    write_report(out, &report)
        .with_context(|| format!("cannot write {}", out.join("report.html").display()))?;
    Ok(summary)
}

/// `plan.csv`: each row that passed the field checks and what a run would
/// do with it (without a file: only the ledger's refusals count).
struct PlanWriter {
    csv: Option<csv::Writer<AtomicFile>>,
    counts: PlanCounts,
}

/// `plan.csv`'s columns.
const PLAN_HEADER: [&str; 7] = [
    "row",
    "paymentRequestId",
    "customsDeclarationRequestId",
    "customsCode",
    "declarationAmount",
    "action",
    "detail",
];

impl PlanWriter {
    fn create(path: Option<&Path>) -> anyhow::Result<PlanWriter> {
        let csv = match path {
            Some(path) => {
                let mut file = AtomicFile::create(path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                file.write_all(crate::input::UTF8_BOM)?;
                let mut csv = csv::Writer::from_writer(file);
                csv.write_record(PLAN_HEADER)?;
                Some(csv)
            }
            None => None,
        };
        Ok(PlanWriter {
            csv,
            counts: PlanCounts::default(),
        })
    }

    /// Asks the ledger about one valid row and writes what a run would do
    /// with it; a refusal is returned as the row's rejection.
    fn decide(
        &mut self,
        question: &LedgerQuestion,
        rules: &RowRules,
        line: u64,
        request: &DeclareRequest,
        language: Language,
    ) -> anyhow::Result<Option<Problem>> {
        let decision = match &question.ledger {
            Some(ledger) => ledger.decide(
                request,
                &request.to_body(),
                chrono::Utc::now(),
                question.retransmit_wait,
                question.resend_failed,
            )?,
            None => Decision::Send {
                retransmission: false,
            },
        };
        let mut refused = None;
        let (action, detail) = match decision {
            Decision::Send {
                retransmission: false,
            } => {
                self.counts.send += 1;
                ("send", String::new())
            }
            Decision::Send {
                retransmission: true,
            } => {
                self.counts.retransmit += 1;
                ("retransmit", String::new())
            }
            Decision::Known(result) => {
                self.counts.from_ledger += 1;
                (
                    "from_ledger",
                    format!("{} {}", result.result_status, result.result_code),
                )
            }
            Decision::Refused(Refusal::TooEarly {
                earlier,
                allowed_from,
            }) => {
                self.counts.too_early += 1;
                let message = RowMessage::RetransmissionTooEarly {
                    earlier: super::admission::earlier_run(earlier),
                    allowed_from: super::admission::local_time(&crate::ledger::ledger_time(
                        allowed_from,
                    )),
                };
                ("too_early", message.text(language))
            }
            Decision::Refused(refusal) => {
                self.counts.rejected_by_ledger += 1;
                let problem = super::admission::ledger_problem(rules, request, refusal);
                let detail = problem.message.text(language);
                refused = Some(problem);
                ("rejected_by_ledger", detail)
            }
        };
        let Some(csv) = &mut self.csv else {
            return Ok(refused);
        };
        crate::report::spreadsheet_safe::write_record(
            csv,
            [
                line.to_string().as_str(),
                &request.payment_request_id,
                &request.customs_declaration_request_id,
                &request.customs.customs_code,
                &request.declaration_amount.value,
                action,
                &detail,
            ],
        )?;
        Ok(refused)
    }

    fn commit(self) -> anyhow::Result<PlanCounts> {
        let counts = self.counts;
        if let Some(csv) = self.csv {
            let file = csv.into_inner().map_err(|e| e.into_error())?;
            file.commit()?;
        }
        Ok(counts)
    }
}

/// One rejected row's reasons as kept: codes and parameters, not text,
/// and its cells in the fields' columns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeptRejection {
    pub row: u64,
    pub problems: Vec<KeptProblem>,
    /// Column (0-based) → the cell's text; certificate numbers masked.
    #[serde(default)]
    pub cells: std::collections::BTreeMap<usize, String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeptProblem {
    pub field: String,
    pub label: String,
    pub message: RowMessage,
}

impl KeptProblem {
    /// The kind of problem the page groups rows by: the field and the
    /// message's code.
    pub fn kind(&self) -> String {
        format!("{}:{}", self.field, self.message.code())
    }
}

/// The columns the kept cells come from, beside the reasons: each field's
/// column in the input and its header there.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct KeptColumns {
    /// (canonical field, column (0-based), the file's header).
    pub fields: Vec<(String, usize, String)>,
    pub sheet: Option<String>,
    pub header_row: u64,
}

impl KeptColumns {
    /// The file beside the reasons of `reasons`.
    pub fn path(reasons: &Path) -> std::path::PathBuf {
        reasons.with_extension("columns.json")
    }

    pub fn read(reasons: &Path) -> Option<KeptColumns> {
        let text = std::fs::read_to_string(KeptColumns::path(reasons)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The column a field is read from.
    pub fn column_of(&self, field: &str) -> Option<usize> {
        self.fields
            .iter()
            .find(|(name, _, _)| name == field)
            .map(|(_, column, _)| *column)
    }
}

/// The most rejected rows whose reasons and cells are kept, and the most
/// bytes they take: the page reads them at each view of its grid, and
/// rejected.xlsx has every row.
pub const MAX_KEPT_REJECTIONS: usize = 100_000;
pub const MAX_KEPT_BYTES: u64 = 32 * 1024 * 1024;

/// The rejected rows' reasons and cells, kept to be said and corrected
/// later.
struct KeptReasons {
    file: AtomicFile,
    path: std::path::PathBuf,
    rows: usize,
    bytes: u64,
    columns: Vec<(usize, bool)>,
}

impl KeptReasons {
    fn create(
        path: &Path,
        source: &crate::input::RowSource,
        rules: &RowRules,
    ) -> anyhow::Result<KeptReasons> {
        let fields: Vec<(String, usize, String)> = rules
            .field_columns()
            .into_iter()
            .map(|(field, column)| {
                let header = source.headers().get(column).cloned().unwrap_or_default();
                (field.to_owned(), column, header)
            })
            .collect();
        let certificate = crate::fields::Field::CertificateNo.name();
        let columns = fields
            .iter()
            .map(|(field, column, _)| (*column, field == certificate))
            .collect();
        let kept_columns = KeptColumns {
            fields,
            sheet: source.sheet().map(str::to_owned),
            header_row: source.header_line(),
        };
        let columns_path = KeptColumns::path(path);
        write_json(&columns_path, &kept_columns)
            .with_context(|| format!("cannot write {}", columns_path.display()))?;
        Ok(KeptReasons {
            file: AtomicFile::create_private(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
            path: path.to_owned(),
            rows: 0,
            bytes: 0,
            columns,
        })
    }

    fn keep(&mut self, row: &crate::input::RowRef<'_>, problems: &[Problem]) -> anyhow::Result<()> {
        if self.rows >= MAX_KEPT_REJECTIONS || self.bytes >= MAX_KEPT_BYTES {
            return Ok(());
        }
        self.rows += 1;
        let cells = self
            .columns
            .iter()
            .map(|&(column, certificate)| {
                let text = row.cell(column).original_text();
                let text = if certificate {
                    crate::ledger::mask_certificate(text.trim())
                } else if text.chars().count() > crate::input::MAX_EDIT_CHARS {
                    // Longer than any field may be: kept in part, said so.
                    let mut part: String =
                        text.chars().take(crate::input::MAX_EDIT_CHARS).collect();
                    part.push('…');
                    part
                } else {
                    text.into_owned()
                };
                (column, text)
            })
            .collect();
        let kept = KeptRejection {
            row: row.line,
            problems: problems
                .iter()
                .map(|problem| KeptProblem {
                    field: problem.field.to_owned(),
                    label: problem.label.to_string(),
                    message: problem.message.clone(),
                })
                .collect(),
            cells,
        };
        let mut line = serde_json::to_vec(&kept).map_err(std::io::Error::from)?;
        line.push(b'\n');
        self.bytes += line.len() as u64;
        self.file
            .write_all(&line)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn commit(self) -> anyhow::Result<()> {
        let path = self.path;
        self.file
            .commit()
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The kept rejections of `path`, one at a time, as they were written.
pub fn kept_rejections(path: &Path) -> Option<impl Iterator<Item = KeptRejection>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).ok()?;
    Some(
        std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str::<KeptRejection>(&line).ok()),
    )
}

/// The kept reasons of `path` as the page lists them (row, fields,
/// reasons), said in `language`; `None` when there are none to read.
pub fn kept_reasons(path: &Path, language: Language) -> Option<Vec<[String; 3]>> {
    let listed = kept_rejections(path)?
        .take(crate::report::html::MAX_LISTED)
        .map(|kept| {
            let reasons: Vec<String> = kept
                .problems
                .iter()
                .map(|problem| crate::i18n::labelled(&problem.label, &problem.message, language))
                .collect();
            let (fields, reasons) = crate::report::reason_cells(
                kept.problems.iter().map(|problem| problem.field.as_str()),
                &reasons,
                language,
            );
            [kept.row.to_string(), fields, reasons]
        })
        .collect();
    Some(listed)
}
