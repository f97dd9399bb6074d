//! `report.html`: one self-contained page per `validate` or `run` that a
//! person opens from the out folder — the counts, outcomes by result code,
//! errors by field, requests per second over the run, latency, identity
//! checks, and the rows that need action (rejected, F, U). Inline CSS and
//! SVG only: no script, no font or image from the network; UTF-8, so that
//! Chinese shows; laid out to print. Row messages come from the same
//! catalogue as `rejected.csv`; certificate numbers never appear (no
//! column shown holds one).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use super::{AtomicFile, ProblemCount, RowCounts};
use crate::messages::{Language, describe_code};
use crate::outcome::StatusCounts;

/// Rows listed per kind at most; the CSV files hold them all.
pub const MAX_LISTED: usize = 500;

/// Latency of the requests of a run, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub requests: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// From request latencies in microseconds (sorted here).
    pub fn of(mut micros: Vec<u32>) -> Option<Latency> {
        if micros.is_empty() {
            return None;
        }
        micros.sort_unstable();
        let at = |share: f64| {
            let index = ((micros.len() as f64 * share).ceil() as usize).clamp(1, micros.len()) - 1;
            f64::from(micros[index]) / 1000.0
        };
        Some(Latency {
            requests: micros.len() as u64,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: f64::from(*micros.last().expect("not empty")) / 1000.0,
        })
    }
}

/// What the page shows.
pub struct ReportData<'a> {
    /// `validate` or `run`.
    pub command: &'a str,
    pub input: &'a str,
    /// Where a run declared (`None` for `validate`).
    pub endpoint: Option<&'a str>,
    pub rows: &'a RowCounts,
    pub results: Option<StatusCounts>,
    pub codes: &'a BTreeMap<String, u64>,
    pub problems: &'a [ProblemCount],
    pub identity_checks: &'a BTreeMap<String, u64>,
    /// Requests started in each second of the run.
    pub per_second: &'a [u64],
    pub latency: Option<Latency>,
    pub started_at: &'a str,
    pub duration_ms: u128,
    pub stopped: Option<&'a str>,
    pub exit_code: u8,
    pub language: Language,
}

/// The page's own words, in both languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Title,
    Input,
    Endpoint,
    Started,
    Duration,
    ExitCode,
    Stopped,
    Rows,
    Read,
    Valid,
    Rejected,
    Blank,
    AboveHeader,
    Totals,
    Outcomes,
    ResultCode,
    Count,
    ErrorsByField,
    Field,
    Code,
    Meaning,
    RequestsPerSecond,
    Second,
    Latency,
    Requests,
    IdentityChecks,
    NeedAction,
    RejectedRows,
    FailedRows,
    UnknownRows,
    Row,
    Error,
    Message,
    Status,
    AndMore,
    Nothing,
    Sandbox,
}

impl Label {
    pub const ALL: [Label; 37] = [
        Label::Title,
        Label::Input,
        Label::Endpoint,
        Label::Started,
        Label::Duration,
        Label::ExitCode,
        Label::Stopped,
        Label::Rows,
        Label::Read,
        Label::Valid,
        Label::Rejected,
        Label::Blank,
        Label::AboveHeader,
        Label::Totals,
        Label::Outcomes,
        Label::ResultCode,
        Label::Count,
        Label::ErrorsByField,
        Label::Field,
        Label::Code,
        Label::Meaning,
        Label::RequestsPerSecond,
        Label::Second,
        Label::Latency,
        Label::Requests,
        Label::IdentityChecks,
        Label::NeedAction,
        Label::RejectedRows,
        Label::FailedRows,
        Label::UnknownRows,
        Label::Row,
        Label::Error,
        Label::Message,
        Label::Status,
        Label::AndMore,
        Label::Nothing,
        Label::Sandbox,
    ];

    pub fn text(self, language: Language) -> &'static str {
        let (en, zh) = match self {
            Label::Title => ("declare-batch report", "declare-batch 报告"),
            Label::Input => ("Input", "输入文件"),
            Label::Endpoint => ("Declared to", "申报到"),
            Label::Started => ("Started", "开始时间"),
            Label::Duration => ("Duration", "用时"),
            Label::ExitCode => ("Exit code", "退出码"),
            Label::Stopped => ("Stopped early", "提前停止"),
            Label::Rows => ("Rows", "行数"),
            Label::Read => ("read", "已读取"),
            Label::Valid => ("valid", "有效"),
            Label::Rejected => ("rejected", "被拒绝"),
            Label::Blank => ("blank, skipped", "空行（已跳过）"),
            Label::AboveHeader => ("above the header, skipped", "表头上方（已跳过）"),
            Label::Totals => ("totals rows, skipped", "合计行（已跳过）"),
            Label::Outcomes => ("Outcomes", "申报结果"),
            Label::ResultCode => ("Result code", "结果码"),
            Label::Count => ("Count", "数量"),
            Label::ErrorsByField => ("Errors by field", "按字段统计的错误"),
            Label::Field => ("Field", "字段"),
            Label::Code => ("Code", "代码"),
            Label::Meaning => ("Meaning", "含义"),
            Label::RequestsPerSecond => ("Requests per second", "每秒请求数"),
            Label::Second => ("second", "秒"),
            Label::Latency => ("Latency (ms)", "延迟（毫秒）"),
            Label::Requests => ("requests", "请求"),
            Label::IdentityChecks => ("Identity checks", "身份核验"),
            Label::NeedAction => ("Rows that need action", "需要处理的行"),
            Label::RejectedRows => (
                "Rejected: fix them in rejected.xlsx and feed it back",
                "被拒绝：在 rejected.xlsx 中修正后重新导入",
            ),
            Label::FailedRows => ("Failed (F): final answers", "失败（F）：最终结果"),
            Label::UnknownRows => (
                "Unknown (U): in retry.csv, to send again or inquire",
                "未知（U）：在 retry.csv 中，可重新申报或查询",
            ),
            Label::Row => ("Row", "行"),
            Label::Error => ("Error", "错误"),
            Label::Message => ("Message", "说明"),
            Label::Status => ("Status", "状态"),
            Label::AndMore => ("more: see the file", "更多：见文件"),
            Label::Nothing => ("None.", "无。"),
            Label::Sandbox => (
                "Sandbox: nothing was declared for real",
                "沙箱：没有真实申报",
            ),
        };
        match language {
            Language::En => en,
            Language::ZhCn => zh,
        }
    }
}

/// Text made safe for HTML, attributes included.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    escape_into(&mut escaped, text).expect("a String takes every write");
    escaped
}

fn escape_into(mut dest: impl std::fmt::Write, text: &str) -> std::fmt::Result {
    let mut start = 0;
    for (at, c) in text.char_indices() {
        let entity = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            _ => continue,
        };
        dest.write_str(&text[start..at])?;
        dest.write_str(entity)?;
        start = at + 1;
    }
    dest.write_str(&text[start..])
}

/// The escaper of the page's templates (`askama.toml`): the same entities
/// as the report.
#[derive(Debug, Clone, Copy)]
pub struct HtmlEscaper;

impl askama::filters::Escaper for HtmlEscaper {
    fn write_escaped_str<W: std::fmt::Write>(&self, dest: W, string: &str) -> std::fmt::Result {
        escape_into(dest, string)
    }
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', 'PingFang SC', 'Microsoft YaHei',
  'WenQuanYi Micro Hei', sans-serif; margin: 2em auto; max-width: 70em; color: #1f2328;
  padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; height: .8em; background: #0969da; vertical-align: middle; }
.s { color: #1a7f37; } .f { color: #cf222e; } .u { color: #9a6700; }
.sandbox { background: #fff8c5; border: 1px solid #d4a72c; padding: .5em 1em; }
.cards { display: flex; flex-wrap: wrap; gap: .8em; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: .5em 1em; min-width: 7em; }
.card b { display: block; font-size: 1.6em; }
svg { max-width: 100%; height: auto; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; }
  table, svg, .cards { break-inside: avoid; } }
";

/// Writes `report.html` into `out`, reading the rows that need action from
/// `rejected.csv` and `results.csv` there.
pub fn write_report(out: &Path, data: &ReportData<'_>) -> io::Result<()> {
    let page = render(out, data)?;
    // It lists rejected rows, names and IDs among them.
    let mut file = AtomicFile::create_private(&out.join("report.html"))?;
    file.write_all(page.as_bytes())?;
    file.commit()
}

fn render(out: &Path, data: &ReportData<'_>) -> io::Result<String> {
    let language = data.language;
    let label = |label: Label| escape(label.text(language));
    let mut page = String::with_capacity(64 * 1024);
    let lang = match language {
        Language::En => "en",
        Language::ZhCn => "zh-CN",
    };
    // Writing to a String cannot fail.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        label(Label::Title),
        escape(data.input),
        label(Label::Title)
    );
    if data.endpoint == Some(crate::protocol::EMBEDDED_ENDPOINT) {
        let _ = writeln!(page, "<p class=\"sandbox\">{}</p>", label(Label::Sandbox));
    }
    page.push_str("<table>\n");
    let mut fact = |name: Label, value: &str| {
        let _ = writeln!(
            page,
            "<tr><th>{}</th><td>{}</td></tr>",
            label(name),
            escape(value)
        );
    };
    fact(Label::Input, data.input);
    if let Some(endpoint) = data.endpoint {
        fact(Label::Endpoint, endpoint);
    }
    fact(Label::Started, data.started_at);
    fact(
        Label::Duration,
        &format!("{:.1} s", data.duration_ms as f64 / 1000.0),
    );
    fact(Label::ExitCode, &data.exit_code.to_string());
    if let Some(stopped) = data.stopped {
        fact(Label::Stopped, stopped);
    }
    page.push_str("</table>\n");

    let _ = writeln!(
        page,
        "<h2>{}</h2>\n<div class=\"cards\">",
        label(Label::Rows)
    );
    let rows = data.rows;
    let mut card = |name: Label, value: u64, class: &str| {
        let _ = writeln!(
            page,
            "<div class=\"card {class}\"><b>{value}</b>{}</div>",
            label(name)
        );
    };
    card(Label::Read, rows.read, "");
    card(Label::Valid, rows.valid, "");
    card(
        Label::Rejected,
        rows.rejected,
        if rows.rejected > 0 { "f" } else { "" },
    );
    card(Label::Blank, rows.blank, "");
    if rows.above_header > 0 {
        card(Label::AboveHeader, rows.above_header, "");
    }
    if rows.totals > 0 {
        card(Label::Totals, rows.totals, "");
    }
    if let Some(results) = data.results {
        card(Label::Outcomes, results.total(), "");
        let _ = writeln!(
            page,
            "<div class=\"card s\"><b>{}</b>S</div><div class=\"card f\"><b>{}</b>F</div>\
             <div class=\"card u\"><b>{}</b>U</div>",
            results.success, results.failed, results.unknown
        );
    }
    page.push_str("</div>\n");

    if data.results.is_some() {
        let _ = writeln!(page, "<h2>{}</h2>", label(Label::Outcomes));
        counts_table(
            &mut page,
            &[label(Label::ResultCode), label(Label::Count)],
            data.codes
                .iter()
                .map(|(code, &count)| (vec![escape(code)], count)),
        );
    }
    let _ = writeln!(page, "<h2>{}</h2>", label(Label::ErrorsByField));
    if data.problems.is_empty() {
        let _ = writeln!(page, "<p>{}</p>", label(Label::Nothing));
    } else {
        counts_table(
            &mut page,
            &[
                label(Label::Field),
                label(Label::Code),
                label(Label::Meaning),
                label(Label::Count),
            ],
            data.problems.iter().map(|problem| {
                (
                    vec![
                        escape(problem.field),
                        escape(problem.code),
                        escape(describe_code(problem.code, language)),
                    ],
                    problem.count,
                )
            }),
        );
    }
    if data.results.is_some() {
        let _ = writeln!(page, "<h2>{}</h2>", label(Label::RequestsPerSecond));
        rate_chart(&mut page, data.per_second, &label(Label::Second));
        let _ = writeln!(page, "<h2>{}</h2>", label(Label::Latency));
        match data.latency {
            None => {
                let _ = writeln!(page, "<p>{}</p>", label(Label::Nothing));
            }
            Some(latency) => {
                let _ = writeln!(
                    page,
                    "<table><tr><th>{}</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>\
                     <tr><td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td>\
                     <td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td></tr></table>",
                    label(Label::Requests),
                    latency.requests,
                    latency.p50,
                    latency.p90,
                    latency.p99,
                    latency.max
                );
            }
        }
        let _ = writeln!(page, "<h2>{}</h2>", label(Label::IdentityChecks));
        if data.identity_checks.is_empty() {
            let _ = writeln!(page, "<p>{}</p>", label(Label::Nothing));
        } else {
            counts_table(
                &mut page,
                &[label(Label::Status), label(Label::Count)],
                data.identity_checks
                    .iter()
                    .map(|(result, &count)| (vec![escape(result)], count)),
            );
        }
    }

    let _ = writeln!(page, "<h2>{}</h2>", label(Label::NeedAction));
    let rejected = read_rows(&out.join("rejected.csv"), |record| {
        Some(vec![
            record.get(0)?.to_owned(),
            record.get(1)?.to_owned(),
            record.get(2)?.to_owned(),
        ])
    })?;
    action_table(
        &mut page,
        &label(Label::RejectedRows),
        &[label(Label::Row), label(Label::Field), label(Label::Error)],
        rejected,
        &label(Label::AndMore),
        &label(Label::Nothing),
    );
    if data.results.is_some() {
        for (status, title) in [("F", Label::FailedRows), ("U", Label::UnknownRows)] {
            let rows = read_rows(&out.join("results.csv"), |record| {
                // row, paymentRequestId, customsDeclarationRequestId, …,
                // resultStatus (6), resultCode, resultMessage.
                (record.get(6)? == status).then(|| {
                    [0, 1, 2, 7, 8]
                        .iter()
                        .map(|&i| record.get(i).unwrap_or_default().to_owned())
                        .collect()
                })
            })?;
            action_table(
                &mut page,
                &label(title),
                &[
                    label(Label::Row),
                    "paymentRequestId".to_owned(),
                    "customsDeclarationRequestId".to_owned(),
                    label(Label::ResultCode),
                    label(Label::Message),
                ],
                rows,
                &label(Label::AndMore),
                &label(Label::Nothing),
            );
        }
    }
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

/// A table of labelled counts with a bar each, the largest first.
fn counts_table(
    page: &mut String,
    header: &[String],
    rows: impl Iterator<Item = (Vec<String>, u64)>,
) {
    let mut rows: Vec<(Vec<String>, u64)> = rows.collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.1));
    let most = rows.first().map_or(1, |row| row.1.max(1));
    page.push_str("<table>\n<tr>");
    for name in header {
        let _ = write!(page, "<th>{name}</th>");
    }
    page.push_str("<th></th></tr>\n");
    for (cells, count) in rows {
        page.push_str("<tr>");
        for cell in cells {
            let _ = write!(page, "<td>{cell}</td>");
        }
        let width = (count as f64 / most as f64 * 12.0).max(0.1);
        let _ = writeln!(
            page,
            "<td class=\"n\">{count}</td><td><span class=\"bar\" style=\"width:{width:.2}em\"></span></td></tr>"
        );
    }
    page.push_str("</table>\n");
}

/// Requests per second as an SVG bar chart (at most 300 bars: long runs
/// are shown per several seconds, averaged).
fn rate_chart(page: &mut String, per_second: &[u64], second: &str) {
    if per_second.is_empty() {
        return;
    }
    let group = per_second.len().div_ceil(300);
    let bars: Vec<f64> = per_second
        .chunks(group)
        .map(|chunk| chunk.iter().sum::<u64>() as f64 / chunk.len() as f64)
        .collect();
    let most = bars.iter().copied().fold(1.0, f64::max);
    let (width, height) = (600.0, 160.0);
    let bar_width = width / bars.len() as f64;
    let _ = writeln!(
        page,
        "<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" \
         role=\"img\" aria-label=\"requests per second\">",
        width + 50.0,
        height + 30.0,
        width + 50.0,
        height + 30.0
    );
    let _ = writeln!(
        page,
        "<text x=\"0\" y=\"12\" font-size=\"11\">{most:.0}/s</text>\
         <line x1=\"45\" y1=\"5\" x2=\"45\" y2=\"{height}\" stroke=\"#8c959f\"/>\
         <line x1=\"45\" y1=\"{height}\" x2=\"{}\" y2=\"{height}\" stroke=\"#8c959f\"/>",
        width + 45.0
    );
    for (index, value) in bars.iter().enumerate() {
        let bar_height = value / most * (height - 10.0);
        let _ = writeln!(
            page,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"#0969da\"/>",
            45.0 + index as f64 * bar_width,
            height - bar_height,
            (bar_width - 0.5).max(0.5),
            bar_height
        );
    }
    let _ = writeln!(
        page,
        "<text x=\"45\" y=\"{}\" font-size=\"11\">0</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{} {}</text></svg>",
        height + 15.0,
        width + 45.0,
        height + 15.0,
        per_second.len(),
        escape(second)
    );
}

/// The first rows of a CSV output that `pick` keeps, and how many there
/// are in all; a missing file has none.
fn read_rows(
    path: &Path,
    pick: impl Fn(&csv::StringRecord) -> Option<Vec<String>>,
) -> io::Result<(Vec<Vec<String>>, u64)> {
    let mut reader = match super::read_output_csv(path) {
        Ok(reader) => reader,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(error) => return Err(error),
    };
    let (mut rows, mut count) = (Vec::new(), 0u64);
    for record in reader.records() {
        let record = record.map_err(io::Error::other)?;
        if let Some(row) = pick(&record) {
            count += 1;
            if rows.len() < MAX_LISTED {
                rows.push(row);
            }
        }
    }
    Ok((rows, count))
}

fn action_table(
    page: &mut String,
    title: &str,
    header: &[String],
    (rows, count): (Vec<Vec<String>>, u64),
    and_more: &str,
    nothing: &str,
) {
    let _ = writeln!(page, "<h3>{title} ({count})</h3>");
    if rows.is_empty() {
        let _ = writeln!(page, "<p>{nothing}</p>");
        return;
    }
    page.push_str("<table>\n<tr>");
    for name in header {
        let _ = write!(page, "<th>{name}</th>");
    }
    page.push_str("</tr>\n");
    let listed = rows.len() as u64;
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            let _ = write!(page, "<td>{}</td>", escape(&cell));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
    if count > listed {
        let _ = writeln!(page, "<p>+{} {and_more}</p>", count - listed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_both_languages() {
        for label in Label::ALL {
            let (en, zh) = (label.text(Language::En), label.text(Language::ZhCn));
            assert!(!en.is_empty() && en != zh, "{label:?}");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{label:?}: {zh}"
            );
        }
    }

    #[test]
    fn latency_percentiles() {
        let latency = Latency::of((1..=100).map(|ms| ms * 1000).collect()).unwrap();
        assert_eq!(latency.requests, 100);
        assert_eq!(latency.p50, 50.0);
        assert_eq!(latency.p90, 90.0);
        assert_eq!(latency.p99, 99.0);
        assert_eq!(latency.max, 100.0);
        assert_eq!(Latency::of(Vec::new()), None);
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
