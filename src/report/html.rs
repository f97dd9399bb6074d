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
use crate::i18n::report::ReportWords;
use crate::i18n::{Language, describe_code};
use crate::outcome::{Status, StatusCounts};

/// Rows listed per kind at most; the CSV files hold them all.
pub const MAX_LISTED: usize = 500;

/// Latency of the requests of a run, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// Corrected rows sent again under their declared IDs, answered; and
    /// corrections waiting for their retransmission.
    pub retransmitted: u64,
    pub waiting_for_retransmission: u64,
    /// An inquiry's customs results: each code (with what it says) and
    /// how many declarations have it.
    pub customs_results: Vec<(String, u64)>,
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
    let w = ReportWords::of(data.language);
    let mut page = String::with_capacity(64 * 1024);
    // Writing to a String cannot fail.
    write_facts(&mut page, data, w);
    write_row_cards(&mut page, data, w);
    write_outcomes_and_errors(&mut page, data, w);
    if data.results.is_some() {
        write_timing(&mut page, data, w);
    }
    write_rows_to_act_on(&mut page, data, w, out)?;
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

/// The head, the title and the run's facts.
fn write_facts(page: &mut String, data: &ReportData<'_>, w: &ReportWords) {
    let lang = data.language.tag();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(w.title),
        escape(data.input),
        escape(w.title)
    );
    if data.endpoint == Some(crate::protocol::EMBEDDED_ENDPOINT) {
        let _ = writeln!(page, "<p class=\"sandbox\">{}</p>", escape(w.sandbox));
    }
    page.push_str("<table>\n");
    let mut fact = |name: &str, value: &str| {
        let _ = writeln!(
            page,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    };
    fact(w.input, data.input);
    if let Some(endpoint) = data.endpoint {
        fact(w.endpoint, endpoint);
    }
    fact(w.started, data.started_at);
    fact(
        w.duration,
        &format!("{:.1} s", data.duration_ms as f64 / 1000.0),
    );
    fact(w.exit_code, &data.exit_code.to_string());
    if let Some(stopped) = data.stopped {
        fact(w.stopped, stopped);
    }
    page.push_str("</table>\n");
}

/// The row counts, and the outcomes by status.
fn write_row_cards(page: &mut String, data: &ReportData<'_>, w: &ReportWords) {
    let _ = writeln!(page, "<h2>{}</h2>\n<div class=\"cards\">", escape(w.rows));
    let rows = data.rows;
    let mut card = |name: &str, value: u64, class: &str| {
        let _ = writeln!(
            page,
            "<div class=\"card {class}\"><b>{value}</b>{}</div>",
            escape(name)
        );
    };
    card(w.read, rows.read, "");
    card(w.valid, rows.valid, "");
    card(
        w.rejected,
        rows.rejected,
        if rows.rejected > 0 { "f" } else { "" },
    );
    card(w.blank, rows.blank, "");
    if rows.above_header > 0 {
        card(w.above_header, rows.above_header, "");
    }
    if rows.totals > 0 {
        card(w.totals, rows.totals, "");
    }
    if data.retransmitted > 0 {
        card(w.retransmitted, data.retransmitted, "");
    }
    if data.waiting_for_retransmission > 0 {
        card(
            w.waiting_for_retransmission,
            data.waiting_for_retransmission,
            "u",
        );
    }
    if let Some(results) = data.results {
        card(w.outcomes, results.total(), "");
        let _ = writeln!(
            page,
            "<div class=\"card s\"><b>{}</b>S</div><div class=\"card f\"><b>{}</b>F</div>\
             <div class=\"card u\"><b>{}</b>U</div>",
            results.success, results.failed, results.unknown
        );
    }
    page.push_str("</div>\n");
}

/// The outcomes by result code and the errors by field.
fn write_outcomes_and_errors(page: &mut String, data: &ReportData<'_>, w: &ReportWords) {
    let language = data.language;
    if data.results.is_some() {
        let _ = writeln!(page, "<h2>{}</h2>", escape(w.outcomes));
        counts_table(
            page,
            &[w.result_code, w.count],
            data.codes
                .iter()
                .map(|(code, &count)| (vec![code.clone()], count)),
        );
    }
    if !data.customs_results.is_empty() {
        let _ = writeln!(page, "<h2>{}</h2>", escape(w.customs_results));
        counts_table(
            page,
            &[w.customs_result, w.count],
            data.customs_results
                .iter()
                .map(|(code, count)| (vec![code.clone()], *count)),
        );
    }
    let _ = writeln!(page, "<h2>{}</h2>", escape(w.errors_by_field));
    if data.problems.is_empty() {
        let _ = writeln!(page, "<p>{}</p>", escape(w.nothing));
    } else {
        counts_table(
            page,
            &[w.field, w.code, w.meaning, w.count],
            data.problems.iter().map(|problem| {
                (
                    vec![
                        problem.field.to_string(),
                        problem.code.to_string(),
                        describe_code(&problem.code, language).to_owned(),
                    ],
                    problem.count,
                )
            }),
        );
    }
}

/// Requests per second, latency and identity checks of a run.
fn write_timing(page: &mut String, data: &ReportData<'_>, w: &ReportWords) {
    let _ = writeln!(page, "<h2>{}</h2>", escape(w.requests_per_second));
    rate_chart(page, data.per_second, &escape(w.second));
    let _ = writeln!(page, "<h2>{}</h2>", escape(w.latency));
    match data.latency {
        None => {
            let _ = writeln!(page, "<p>{}</p>", escape(w.nothing));
        }
        Some(latency) => {
            let _ = writeln!(
                page,
                "<table><tr><th>{}</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>\
                 <tr><td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td>\
                 <td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td></tr></table>",
                escape(w.requests),
                latency.requests,
                latency.p50,
                latency.p90,
                latency.p99,
                latency.max
            );
        }
    }
    let _ = writeln!(page, "<h2>{}</h2>", escape(w.identity_checks));
    if data.identity_checks.is_empty() {
        let _ = writeln!(page, "<p>{}</p>", escape(w.nothing));
    } else {
        counts_table(
            page,
            &[w.status, w.count],
            data.identity_checks
                .iter()
                .map(|(result, &count)| (vec![result.clone()], count)),
        );
    }
}

/// The rows that need action: rejected, F and U.
fn write_rows_to_act_on(
    page: &mut String,
    data: &ReportData<'_>,
    w: &ReportWords,
    out: &Path,
) -> io::Result<()> {
    let _ = writeln!(page, "<h2>{}</h2>", escape(w.need_action));
    let rejected = read_rows(&out.join("rejected.csv"), |record| {
        Some(vec![
            record.get(0)?.to_owned(),
            record.get(1)?.to_owned(),
            record.get(2)?.to_owned(),
        ])
    })?;
    action_table(
        page,
        w.rejected_rows,
        &[w.row, w.field, w.error],
        rejected,
        w.and_more,
        w.nothing,
    );
    if data.results.is_some() {
        for (status, title) in [(Status::F, w.failed_rows), (Status::U, w.unknown_rows)] {
            let rows = read_rows(&out.join("results.csv"), |record| {
                let result = super::result_from_record(record).ok()?;
                (result.result_status == status).then(|| {
                    vec![
                        result.row.to_string(),
                        result.payment_request_id,
                        result.customs_declaration_request_id,
                        result.result_code,
                        result.result_message,
                    ]
                })
            })?;
            action_table(
                page,
                title,
                &[
                    w.row,
                    "paymentRequestId",
                    "customsDeclarationRequestId",
                    w.result_code,
                    w.message,
                ],
                rows,
                w.and_more,
                w.nothing,
            );
        }
    }
    Ok(())
}

/// A table of labelled counts with a bar each, the largest first.
/// A table of counts with a bar each, most first. Every text is escaped
/// here: callers pass text as it is.
fn counts_table(
    page: &mut String,
    header: &[&str],
    rows: impl Iterator<Item = (Vec<String>, u64)>,
) {
    let mut rows: Vec<(Vec<String>, u64)> = rows.collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.1));
    let most = rows.first().map_or(1, |row| row.1.max(1));
    page.push_str("<table>\n<tr>");
    for name in header {
        let _ = write!(page, "<th>{}</th>", escape(name));
    }
    page.push_str("<th></th></tr>\n");
    for (cells, count) in rows {
        page.push_str("<tr>");
        for cell in cells {
            let _ = write!(page, "<td>{}</td>", escape(&cell));
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

/// A table of rows that need action, the first `MAX_LISTED` of them. Every
/// text is escaped here: callers pass text as it is.
fn action_table(
    page: &mut String,
    title: &str,
    header: &[&str],
    (rows, count): (Vec<Vec<String>>, u64),
    and_more: &str,
    nothing: &str,
) {
    let _ = writeln!(page, "<h3>{} ({count})</h3>", escape(title));
    if rows.is_empty() {
        let _ = writeln!(page, "<p>{}</p>", escape(nothing));
        return;
    }
    page.push_str("<table>\n<tr>");
    for name in header {
        let _ = write!(page, "<th>{}</th>", escape(name));
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
        let _ = writeln!(page, "<p>+{} {}</p>", count - listed, escape(and_more));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_escape_what_they_are_given_once() {
        let mut page = String::new();
        counts_table(
            &mut page,
            &["<code>"],
            [(vec!["A&B <b>".to_owned()], 2)].into_iter(),
        );
        action_table(
            &mut page,
            "rows & more",
            &["<row>"],
            (vec![vec!["<script>".to_owned()]], 3),
            "more: <see>",
            "none",
        );
        assert!(page.contains("<th>&lt;code&gt;</th>"), "{page}");
        assert!(page.contains("<td>A&amp;B &lt;b&gt;</td>"), "{page}");
        assert!(page.contains("<h3>rows &amp; more (3)</h3>"), "{page}");
        assert!(page.contains("<td>&lt;script&gt;</td>"), "{page}");
        assert!(page.contains("+2 more: &lt;see&gt;"), "{page}");
        assert!(!page.contains("&amp;lt;"), "escaped twice: {page}");
    }

    #[test]
    fn customs_results_and_corrections_are_shown() {
        let dir = tempfile::tempdir().unwrap();
        let rows = RowCounts::default();
        let none = BTreeMap::new();
        let data = ReportData {
            command: "run",
            input: "night.csv",
            endpoint: Some("https://example.com/"),
            rows: &rows,
            results: Some(StatusCounts::default()),
            codes: &none,
            problems: &[],
            identity_checks: &none,
            per_second: &[],
            latency: None,
            started_at: "now",
            duration_ms: 1,
            stopped: None,
            exit_code: 0,
            language: Language::ZhCn,
            retransmitted: 2,
            waiting_for_retransmission: 3,
            customs_results: vec![("ACCEPTED (accepted <by> customs)".to_owned(), 7)],
        };
        let page = render(dir.path(), &data).unwrap();
        assert!(page.contains("<b>2</b>已重新申报"), "{page}");
        assert!(page.contains("<b>3</b>等待重新申报的更正"), "{page}");
        assert!(page.contains("海关结果（查询）"), "{page}");
        assert!(
            page.contains("<td>ACCEPTED (accepted &lt;by&gt; customs)</td>"),
            "{page}"
        );
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
