//! The page's views: one struct per page, rendered by its template in
//! `templates/page/` (askama, which escapes every value by default with
//! the report's escaper), and the small view models the templates read.

use std::path::Path;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::jobs::{JobState, Profile};
use crate::i18n::Language;
use crate::i18n::page::PageWords;
use crate::ledger::RunStatus;
use crate::outcome::StatusCounts;
use crate::run::inquire::InquiryReport;

/// The templates' own filters.
mod filters {
    /// An RFC 3339 time as the server's local minute (`2026-12-05 14:20`),
    /// the page's script then shows it in the clerk's own time zone.
    #[askama::filter_fn]
    pub fn local_minute(
        value: impl std::fmt::Display,
        _: &dyn askama::Values,
    ) -> askama::Result<String> {
        Ok(crate::report::local_minute(&value.to_string()))
    }
}

/// A rendered page as a response; a template that fails (it cannot, with
/// these types) is a plain 500.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// An error page with `status` in the clerk's language.
pub fn error_page_in(language: Language, status: StatusCode, message: &str) -> Response {
    let mut response = render(&ErrorPage {
        lang: language.tag(),
        title: PageWords::of(language).title,
        message,
    });
    *response.status_mut() = status;
    response
}

#[derive(Template)]
#[template(path = "page/error.html")]
pub struct ErrorPage<'a> {
    pub lang: &'static str,
    pub title: &'static str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "page/login.html")]
pub struct LoginPage {
    pub lang: &'static str,
    pub title: &'static str,
    pub t: &'static PageWords,
}

impl LoginPage {
    pub fn new(language: Language) -> LoginPage {
        let t = PageWords::of(language);
        LoginPage {
            lang: language.tag(),
            title: t.login,
            t,
        }
    }
}

/// One line of the list of jobs.
pub struct JobLine {
    pub id: String,
    pub profile: String,
    pub created_at: String,
    pub state: JobState,
}

impl JobLine {
    pub fn state_text(&self, t: &PageWords) -> String {
        match self.state {
            JobState::Validated => t.state_validated.to_owned(),
            JobState::Running => t.state_running.to_owned(),
            JobState::Interrupted => t.state_interrupted.to_owned(),
            JobState::Finished(crate::exit::SUCCESS) => t.state_all_declared.to_owned(),
            JobState::Finished(crate::exit::SOME_FAILED) => t.state_some_failed.to_owned(),
            JobState::Finished(crate::exit::UNFINISHED) => t.state_rows_left.to_owned(),
            JobState::Finished(_) | JobState::Failed => t.state_failed.to_owned(),
        }
    }
}

impl JobPage<'_> {
    /// When the list is cut short: how many of how many it shows.
    pub fn listed_note(&self) -> Option<String> {
        let listed = self.rejected.len() as u64;
        (listed < self.rejected_count).then(|| {
            format!(
                "{} {listed} / {} · {}",
                self.t.first_of, self.rejected_count, self.t.all_in_rejected_xlsx
            )
        })
    }
}

/// A run's rows with one result code, explained.
pub struct Outcome {
    pub code: String,
    pub count: u64,
    pub meaning: String,
    pub api_text: &'static str,
}

impl Outcome {
    /// The rows of a run's summary by code, most first.
    pub fn of_codes(
        codes: &std::collections::BTreeMap<String, u64>,
        language: Language,
    ) -> Vec<Outcome> {
        let mut outcomes: Vec<Outcome> = codes
            .iter()
            .map(|(code, &count)| {
                let (meaning, api_text) = crate::i18n::result_codes::explain(code, language);
                Outcome {
                    code: code.clone(),
                    count,
                    meaning: meaning.to_owned(),
                    api_text,
                }
            })
            .collect();
        outcomes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
        outcomes
    }
}

/// The past runs a profile's ledger knows.
pub struct PastRuns {
    pub profile: String,
    pub runs: Vec<RunStatus>,
}

impl PastRuns {
    /// The query of a run's page.
    pub fn query(&self, run: &RunStatus) -> String {
        past_query(&self.profile, &run_key(&run.out_dir), None)
    }

    /// The key that names a run on the page (never its folder).
    pub fn key(&self, run: &RunStatus) -> String {
        run_key(&run.out_dir)
    }

    /// The run's folder name, without the server's path.
    pub fn name(&self, run: &RunStatus) -> String {
        run_name(Path::new(&run.out_dir))
    }

    /// The customs results returned, `CODE n, …`, or a dash.
    pub fn customs_results(&self, run: &RunStatus) -> String {
        if run.customs_results.is_empty() {
            return "–".to_owned();
        }
        run.customs_results
            .iter()
            .map(|(code, count)| format!("{code} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The key that names a past run on the page: a hash of its folder, so
/// that no server path appears in a page or an address.
pub fn run_key(out_dir: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(out_dir.as_bytes()))
}

/// A run's folder name alone.
pub fn run_name(out: &Path) -> String {
    out.file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
}

/// The query that names a past run (and one of its files).
pub fn past_query(profile: &str, run: &str, file: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("profile", profile)
        .append_pair("run", run);
    if let Some(file) = file {
        query.append_pair("file", file);
    }
    query.finish()
}

#[derive(Template)]
#[template(path = "page/home.html")]
pub struct HomePage<'a> {
    pub lang: &'static str,
    pub title: &'static str,
    pub t: &'static PageWords,
    pub profiles: &'a [Profile],
    pub sandbox_profiles: Vec<&'a str>,
    pub jobs: Vec<JobLine>,
    pub past_runs: Vec<PastRuns>,
}

#[derive(Template)]
#[template(path = "page/job.html")]
pub struct JobPage<'a> {
    pub lang: &'static str,
    pub title: &'static str,
    pub t: &'static PageWords,
    pub id: &'a str,
    pub profile: &'a Profile,
    pub valid_rows: u64,
    pub rejected_count: u64,
    /// Row, field, reason of the first rejected rows.
    pub rejected: Vec<[String; 3]>,
    pub started: bool,
    /// Its run is going on: the page offers to stop it.
    pub running: bool,
    /// The same file was uploaded for this profile and declared at this time.
    pub identical: Option<String>,
    /// After a run: its rows by result code, what each means in the page's
    /// language, and the API's own text.
    pub outcomes: Vec<Outcome>,
    /// Where the rows were read: the sheet (a workbook) and the header row.
    pub sheet: Option<String>,
    pub header_row: u64,
    pub files: Vec<&'static str>,
    /// The group it is a sheet of: declared from there.
    pub group: Option<String>,
}

#[derive(Template)]
#[template(path = "page/past_run.html")]
pub struct PastRunPage<'a> {
    pub lang: &'static str,
    pub title: &'static str,
    pub t: &'static PageWords,
    pub profile: &'a Profile,
    /// The run's folder name (never the server's path) and its key.
    pub out: String,
    pub key: String,
    pub results: StatusCounts,
    /// Each file there, with the query that downloads it.
    pub files: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "page/inquired.html")]
pub struct InquiredPage<'a> {
    pub lang: &'static str,
    pub title: &'static str,
    pub t: &'static PageWords,
    pub out: String,
    pub statuses: String,
    pub report: &'a InquiryReport,
    pub customs_csv: String,
}

impl<'a> InquiredPage<'a> {
    pub fn new(language: Language, out: &Path, report: &'a InquiryReport) -> InquiredPage<'a> {
        let t = PageWords::of(language);
        let statuses: Vec<String> = report
            .by_status
            .iter()
            .map(|(status, count)| format!("{status} {count}"))
            .collect();
        InquiredPage {
            lang: language.tag(),
            title: t.title,
            t,
            out: run_name(out),
            statuses: if statuses.is_empty() {
                "-".to_owned()
            } else {
                statuses.join(", ")
            },
            report,
            customs_csv: "customs.csv".to_owned(),
        }
    }
}

/// One sheet of a group, on the group's page.
pub struct PartLine {
    pub id: String,
    pub sheet: String,
    pub valid: u64,
    pub rejected: u64,
    /// Where it is, in words.
    pub state: String,
    pub files: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "page/group.html")]
pub struct GroupPage<'a> {
    pub lang: &'static str,
    pub title: &'static str,
    pub t: &'static PageWords,
    pub id: &'a str,
    pub profile: &'a Profile,
    pub parts: Vec<PartLine>,
    pub valid_rows: u64,
    pub rejected_count: u64,
    pub started: bool,
    pub running: bool,
    /// Every sheet checked (none asks for its columns).
    pub ready: bool,
    pub identical: Option<String>,
}

#[derive(Template)]
#[template(path = "page/sheet.html")]
pub struct SheetPage<'a> {
    pub lang: &'static str,
    pub title: &'static str,
    pub t: &'static PageWords,
    pub id: &'a str,
    /// The profile's sheet the workbook does not have.
    pub pinned: Option<String>,
    pub sheets: Vec<String>,
    /// The value that chooses all the order sheets, when several have them.
    pub all: Option<&'static str>,
}

/// One field on the mapping page.
pub struct ColumnRow {
    /// The canonical name: the form's field.
    pub name: &'static str,
    /// What the field is, in the page's language.
    pub words: &'static str,
    pub required: bool,
    pub chosen: Option<usize>,
    /// Values of the chosen column.
    pub samples: String,
    /// Needed and not chosen.
    pub missing: bool,
}

/// Headers a mapping page offers at most: ERP exports have a few hundred.
pub const MAX_OFFERED_HEADERS: usize = 1000;

impl ColumnRow {
    pub fn is_chosen(&self, column: &usize) -> bool {
        self.chosen == Some(*column)
    }
}

#[derive(Template)]
#[template(path = "page/columns.html")]
pub struct ColumnsPage<'a> {
    pub lang: &'static str,
    pub title: &'static str,
    pub t: &'static PageWords,
    pub id: &'a str,
    pub sheet: Option<String>,
    pub header_row: u64,
    /// The file's headers to choose from: (column, header), the
    /// non-empty ones, at most `MAX_OFFERED_HEADERS`.
    pub headers: Vec<(usize, String)>,
    pub rows: Vec<ColumnRow>,
    /// Needed fields without a column, in the page's language.
    pub missing: Vec<&'static str>,
    /// A header chosen for two fields.
    pub twice: Option<String>,
    /// A header chosen that the file has in two columns.
    pub ambiguous: Option<String>,
}

/// A kind of problem in the grid, with its rows.
pub struct KindGroup {
    pub kind: String,
    pub text: String,
    pub count: u64,
    pub href: String,
}

/// A column of the grid: one the fields are read from.
pub struct GridColumn {
    pub index: usize,
    pub header: String,
    /// Certificate numbers: shown masked, typed anew.
    pub masked: bool,
}

/// A cell of the grid.
pub struct GridCell {
    pub column: usize,
    pub header: String,
    pub text: String,
    pub masked: bool,
    pub problems: Vec<String>,
}

/// A rejected row of the grid.
pub struct GridRow {
    pub line: u64,
    pub cells: Vec<GridCell>,
    /// Problems of the row as a whole, or of fields without a column.
    pub other_problems: Vec<String>,
}

#[derive(Template)]
#[template(path = "page/fix.html")]
pub struct FixPage<'a> {
    pub lang: &'static str,
    pub title: &'static str,
    pub t: &'static PageWords,
    pub id: &'a str,
    pub valid_rows: u64,
    pub rejected_count: u64,
    pub problem: Option<String>,
    pub kinds: Vec<KindGroup>,
    /// The kind shown; empty: all.
    pub kind: String,
    pub page: usize,
    pub columns: Vec<GridColumn>,
    pub rows: Vec<GridRow>,
    pub page_note: Option<String>,
    pub previous: Option<String>,
    pub next: Option<String>,
}

/// The rows of `rejected.csv`: row, field, error.
pub fn rejected_rows(folder: &Path) -> Vec<[String; 3]> {
    let Ok(mut reader) = crate::report::read_output_csv(&folder.join("rejected.csv")) else {
        return Vec::new();
    };
    reader
        .records()
        .flatten()
        .take(crate::report::html::MAX_LISTED)
        .map(|record| [0, 1, 2].map(|i| record.get(i).unwrap_or_default().to_owned()))
        .collect()
}

/// The files of `names` that `folder` holds: a file is offered only once
/// it is there (the page reloads itself when a run ends).
pub fn files_in(folder: &Path, names: &[&'static str]) -> Vec<&'static str> {
    names
        .iter()
        .copied()
        .filter(|name| folder.join(name).exists())
        .collect()
}

/// The pages' stylesheet, served as `/static/page.css`.
pub const STYLE: &str = "body { font-family: system-ui, 'PingFang SC', 'Microsoft YaHei', \
'WenQuanYi Micro Hei', sans-serif; max-width: 60em; margin: 1.5em auto; padding: 0 1em; \
color: #1f2328; } .sandbox, .warning { background: #fff8c5; border: 1px solid #d4a72c; padding: .4em 1em; } \
table { border-collapse: collapse; } th, td { border: 1px solid #d0d7de; padding: .2em .5em; \
text-align: left; vertical-align: top; } #drop { border: 2px dashed #8c959f; padding: 1.5em; \
margin: .5em 0; } #drop.over { background: #ddf4ff; } button { font-size: 1.1em; padding: .3em 1em; } \
nav { float: right; } td { overflow-wrap: anywhere; } td.bad input { border: 2px solid #cf222e; background: #ffebe9; } \
.why { display: block; color: #a40e26; } .cell-label { display: none; } #grid input { width: 100%; min-width: 4em; box-sizing: border-box; } #grid .why { font-size: .85em; } .save-row { white-space: nowrap; } \
.missing { background: #fff8c5; } select, input, button { max-width: 100%; } \
button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #0969da; } \
@media (max-width: 600px) { body { margin: .5em auto; padding: 0 .5em; } \
table, tbody, tr, td { display: block; } th, tr:has(> th) { display: none; } \
tr { border: 1px solid #d0d7de; margin-bottom: .5em; padding: .2em .4em; } td { border: none; padding: .1em 0; } \
nav { float: none; } .cell-label { display: block; font-size: .85em; color: #57606a; } \
}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Overrides, Settings};

    fn profile(name: &str) -> Profile {
        Profile {
            name: name.to_owned(),
            path: "p.toml".into(),
            settings: Settings::resolve(
                crate::config::Config::default(),
                None,
                Overrides::default(),
            ),
            endpoint: "embedded-sandbox".to_owned(),
            sandbox: true,
            problem: None,
        }
    }

    #[test]
    fn every_value_is_escaped() {
        let hostile = "<script>alert('x')</script>&\"";
        let profiles = [profile(hostile)];
        let t = PageWords::of(Language::En);
        let html = HomePage {
            lang: "en",
            title: t.title,
            t,
            profiles: &profiles,
            sandbox_profiles: vec![hostile],
            jobs: vec![
                JobLine {
                    id: hostile.to_owned(),
                    profile: hostile.to_owned(),
                    created_at: hostile.to_owned(),
                    state: JobState::Finished(3),
                },
                JobLine {
                    id: "b".to_owned(),
                    profile: "p".to_owned(),
                    created_at: "2026-12-05T02:15:00.000+08:00".to_owned(),
                    state: JobState::Finished(0),
                },
            ],
            past_runs: Vec::new(),
        }
        .render()
        .unwrap();
        // A time the script shows in the clerk's zone; the server's minute
        // without it.
        let local = chrono::DateTime::parse_from_rfc3339("2026-12-05T02:15:00+08:00")
            .unwrap()
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string();
        assert!(
            html.contains(&format!(
                "<time datetime=\"2026-12-05T02:15:00.000+08:00\">{local}</time>"
            )),
            "{html}"
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"),
            "{html}"
        );
        assert!(
            html.contains("finished: some rows failed or were rejected"),
            "{html}"
        );
        assert!(!html.contains("exit"), "{html}");
        let page = JobPage {
            lang: "zh-CN",
            title: "t",
            t: PageWords::of(Language::ZhCn),
            id: "abc",
            profile: &profiles[0],
            valid_rows: 2,
            rejected_count: 1,
            rejected: vec![[hostile.to_owned(), "f".to_owned(), hostile.to_owned()]],
            started: false,
            running: false,
            identical: None,
            outcomes: Vec::new(),
            sheet: Some("订单".to_owned()),
            header_row: 3,
            files: vec!["rejected.csv"],
            group: None,
        }
        .render()
        .unwrap();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("申报 2 行到 embedded-sandbox"), "{page}");
        assert!(
            page.contains("读取的工作表 «订单» · 表头所在行 3"),
            "{page}"
        );
        assert!(page.contains("id=\"sandbox\""), "{page}");
        assert!(!page.contains("id=\"listed\""), "all are listed: {page}");
        // A long list says how much of it is shown.
        let long = JobPage {
            lang: "zh-CN",
            title: "t",
            t: PageWords::of(Language::ZhCn),
            id: "abc",
            profile: &profiles[0],
            valid_rows: 2,
            rejected_count: 2000,
            rejected: vec![["2".to_owned(), "f".to_owned(), "r".to_owned()]],
            started: false,
            running: false,
            identical: None,
            outcomes: Vec::new(),
            sheet: None,
            header_row: 1,
            files: Vec::new(),
            group: None,
        }
        .render()
        .unwrap();
        assert!(
            long.contains("<p id=\"listed\">显示前 1 / 2000 · 全部被拒绝的行见 rejected.xlsx</p>"),
            "{long}"
        );
    }
}
