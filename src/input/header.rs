//! Finding the header row instead of assuming it: finance exports put
//! titles, export times and merged banners above it, and instruction
//! sheets before the orders. The header is the first row, among the first
//! 30 non-blank rows, that holds the header of every required field
//! without a default (after `[columns]`); `[input] header_row = N` names it
//! instead. The scan looks at one row at a time, so it reads a bounded
//! number of rows ahead and keeps only the best candidate so far.

/// Non-blank rows looked at for the header row.
pub const HEADER_SEARCH_ROWS: usize = 30;

/// What makes a row the header row.
#[derive(Debug, Clone, Default)]
pub struct HeaderSearch {
    /// Headers the row must hold; empty: the first non-blank row.
    pub required: Vec<String>,
    /// `[input] header_row`: the header is this row (1-based).
    pub fixed_row: Option<u64>,
}

/// The row that came closest to being the header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub line: u64,
    /// Required headers the row lacks.
    pub missing: Vec<String>,
    /// The row's non-empty cells.
    pub found: Vec<String>,
}

impl Candidate {
    /// `row 3 ("支付单号", "金额") lacks: customs.customsCode`.
    pub fn describe(&self) -> String {
        let found: Vec<String> = self
            .found
            .iter()
            .take(12)
            .map(|cell| format!("\"{cell}\""))
            .collect();
        let more = if self.found.len() > 12 { ", …" } else { "" };
        format!(
            "row {} ({}{more}) lacks: {}",
            self.line,
            found.join(", "),
            self.missing.join(", ")
        )
    }
}

/// What a scanned row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// This row is the header row.
    Header,
    /// A row above the header row (a title, an export time): skipped.
    Above,
    /// The search is over without a header row.
    NotFound,
}

/// One scan of one sheet (or CSV file) for its header row.
#[derive(Debug)]
pub struct HeaderScan<'a> {
    search: &'a HeaderSearch,
    non_blank: usize,
    best: Option<Candidate>,
    /// Non-blank rows above the header row so far.
    pub above: u64,
}

impl<'a> HeaderScan<'a> {
    pub fn new(search: &'a HeaderSearch) -> HeaderScan<'a> {
        HeaderScan {
            search,
            non_blank: 0,
            best: None,
            above: 0,
        }
    }

    /// Looks at the next non-blank row, whose trimmed cells are `cells`.
    pub fn step(&mut self, line: u64, cells: &[String]) -> Step {
        if let Some(fixed) = self.search.fixed_row {
            return match line.cmp(&fixed) {
                std::cmp::Ordering::Less => {
                    self.above += 1;
                    Step::Above
                }
                std::cmp::Ordering::Equal => Step::Header,
                std::cmp::Ordering::Greater => Step::NotFound,
            };
        }
        let missing: Vec<String> = self
            .search
            .required
            .iter()
            .filter(|wanted| !cells.iter().any(|cell| cell == *wanted))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Step::Header;
        }
        if self
            .best
            .as_ref()
            .is_none_or(|best| missing.len() < best.missing.len())
        {
            self.best = Some(Candidate {
                line,
                missing,
                found: cells.iter().filter(|c| !c.is_empty()).cloned().collect(),
            });
        }
        self.non_blank += 1;
        if self.non_blank >= HEADER_SEARCH_ROWS {
            Step::NotFound
        } else {
            self.above += 1;
            Step::Above
        }
    }

    /// Why this scan found no header row.
    pub fn failure(&self) -> String {
        match (self.search.fixed_row, &self.best) {
            (Some(fixed), _) => format!("row {fixed} ([input] header_row) is blank or missing"),
            (None, Some(best)) => format!("the best candidate, {}", best.describe()),
            (None, None) => "it has no non-blank row".to_owned(),
        }
    }
}

/// The message of an input without a header row: `misses` says, for each
/// place looked at (a sheet, or the CSV file), why it has none.
pub fn not_found_message(search: &HeaderSearch, misses: &[(Option<String>, String)]) -> String {
    let places: Vec<String> = misses
        .iter()
        .map(|(sheet, why)| match sheet {
            Some(sheet) => format!("sheet \"{sheet}\": {why}"),
            None => why.clone(),
        })
        .collect();
    let rule = match search.fixed_row {
        Some(fixed) => format!("the header row was set to row {fixed}"),
        None => format!(
            "no row among the first {HEADER_SEARCH_ROWS} non-blank rows holds the headers of \
             every required field ({})",
            search.required.join(", ")
        ),
    };
    format!(
        "has no header row: {rule}. {}. Map your headers to the fields in [columns] \
         (\"field\" = \"your header\"), or name the header row with [input] header_row = N",
        places.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn the_first_row_holding_every_required_header_is_the_header() {
        let search = HeaderSearch {
            required: cells(&["支付单号", "金额"]),
            fixed_row: None,
        };
        let mut scan = HeaderScan::new(&search);
        assert_eq!(
            scan.step(1, &cells(&["2026年11月跨境订单报关明细"])),
            Step::Above
        );
        assert_eq!(
            scan.step(2, &cells(&["导出时间", "2026-11-24"])),
            Step::Above
        );
        assert_eq!(
            scan.step(4, &cells(&["支付单号", "", "金额"])),
            Step::Header
        );
        assert_eq!(scan.above, 2);
    }

    #[test]
    fn the_search_gives_up_after_30_rows_naming_the_best_candidate() {
        let search = HeaderSearch {
            required: cells(&["支付单号", "金额", "海关"]),
            fixed_row: None,
        };
        let mut scan = HeaderScan::new(&search);
        assert_eq!(scan.step(1, &cells(&["title"])), Step::Above);
        assert_eq!(scan.step(2, &cells(&["支付单号", "金额"])), Step::Above);
        for line in 3..30 {
            assert_eq!(scan.step(line, &cells(&["data"])), Step::Above);
        }
        assert_eq!(scan.step(30, &cells(&["data"])), Step::NotFound);
        let failure = scan.failure();
        assert!(
            failure.contains("row 2 (\"支付单号\", \"金额\") lacks: 海关"),
            "{failure}"
        );
        let message = not_found_message(&search, &[(Some("Orders".into()), failure)]);
        assert!(
            message.contains("sheet \"Orders\": the best candidate, row 2"),
            "{message}"
        );
        assert!(message.contains("header_row"), "{message}");
    }

    #[test]
    fn a_fixed_header_row_is_taken_as_it_is() {
        let search = HeaderSearch {
            required: cells(&["paymentRequestId"]),
            fixed_row: Some(3),
        };
        let mut scan = HeaderScan::new(&search);
        assert_eq!(scan.step(1, &cells(&["title"])), Step::Above);
        assert_eq!(scan.step(3, &cells(&["anything"])), Step::Header);
        let mut scan = HeaderScan::new(&search);
        assert_eq!(scan.step(4, &cells(&["after it"])), Step::NotFound);
        assert!(scan.failure().contains("row 3"));
    }
}
