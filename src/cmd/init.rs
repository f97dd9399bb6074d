//! `declare-batch init INPUT [--sheet NAME] [--config-out F]`: reads an
//! export's first rows, finds its header row, guesses which header is which
//! field and whether amounts are in yuan or fen, and writes a commented
//! config to start from (never over an existing file). It prints what it
//! mapped and what it could not.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::exit;
use crate::fields::Field;
use crate::init::{Mapping, config_text, guess_amount_unit};
use crate::input::{HEADER_SEARCH_ROWS, HeaderSearch, InputOptions, RowSource};

/// Rows after the header row whose amounts are looked at.
const AMOUNT_SAMPLE_ROWS: usize = 200;

#[derive(Debug, clap::Args)]
pub struct InitOpts {
    /// The order export: a .csv or .xlsx file.
    pub input: PathBuf,
    /// XLSX sheet to read [default: the sheet whose header row maps best].
    #[arg(long)]
    pub sheet: Option<String>,
    /// Where to write the config (never overwritten).
    #[arg(long, default_value = "declare-batch.toml")]
    pub config_out: PathBuf,
}

/// The best header row of one sheet (or of the CSV file).
struct Found {
    sheet: Option<String>,
    header_row: u64,
    mapping: Mapping,
    amounts: Vec<String>,
}

impl InitOpts {
    fn sheets(&self) -> anyhow::Result<Vec<String>> {
        let is_xlsx = self
            .input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
        if let Some(sheet) = &self.sheet {
            return Ok(vec![sheet.clone()]);
        }
        if !is_xlsx {
            return Ok(vec![String::new()]);
        }
        Ok(crate::input::xlsx_sheet_names(&self.input)?)
    }

    /// The row, among the first 30 non-blank rows of `sheet`, that maps
    /// the most required fields, and the amounts under it.
    fn best_row(&self, sheet: &str) -> anyhow::Result<Option<Found>> {
        let options = InputOptions {
            sheet: sheet.to_owned(),
            header: HeaderSearch::default(),
            ..InputOptions::default()
        };
        let mut source = match RowSource::open(&self.input, &options) {
            Ok(source) => source,
            // An empty sheet has nothing to offer.
            Err(crate::input::InputError::Unreadable { message, .. })
                if message.contains("empty") =>
            {
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        };
        let mut rows = vec![(source.header_line(), source.headers().to_vec())];
        while rows.len() < HEADER_SEARCH_ROWS + AMOUNT_SAMPLE_ROWS {
            match source.next_row()? {
                Some(row) => rows.push((row.line, row.header_texts())),
                None => break,
            }
        }
        let best = rows
            .iter()
            .take(HEADER_SEARCH_ROWS)
            .enumerate()
            .map(|(index, (line, cells))| (index, *line, Mapping::of(cells)))
            .filter(|(_, _, mapping)| mapping.required_mapped() > 0)
            .max_by_key(|(index, _, mapping)| {
                (mapping.required_mapped(), std::cmp::Reverse(*index))
            });
        let Some((index, line, mapping)) = best else {
            return Ok(None);
        };
        let amount_column = mapping
            .header_of(Field::AmountValue)
            .and_then(|header| rows[index].1.iter().position(|cell| cell == header));
        let amounts = match amount_column {
            Some(column) => rows[index + 1..]
                .iter()
                .filter_map(|(_, cells)| cells.get(column).cloned())
                .filter(|cell| !cell.is_empty())
                .collect(),
            None => Vec::new(),
        };
        Ok(Some(Found {
            sheet: (!sheet.is_empty()).then(|| sheet.to_owned()),
            header_row: line,
            mapping,
            amounts,
        }))
    }

    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        if self.config_out.exists() {
            bail!(
                "{} already exists; init never overwrites a config: remove it or choose another \
                 --config-out",
                self.config_out.display()
            );
        }
        let mut best: Option<Found> = None;
        for sheet in self.sheets()? {
            if let Some(found) = self.best_row(&sheet)?
                && best
                    .as_ref()
                    .is_none_or(|b| found.mapping.required_mapped() > b.mapping.required_mapped())
            {
                best = Some(found);
            }
        }
        let Some(found) = best else {
            bail!(
                "{}: no row among the first {HEADER_SEARCH_ROWS} non-blank rows of any sheet has a \
                 header init recognises (such as 支付单号, 报关流水号, 海关, paymentRequestId); \
                 write [columns] by hand, starting from config/example.toml",
                self.input.display()
            );
        };
        let (unit, reason) = match found.mapping.amount_unit_in_header {
            Some(unit) => (unit, format!("The amount header names the unit: {unit}.")),
            None => {
                let unit = guess_amount_unit(found.amounts.iter().map(String::as_str));
                let reason = match unit {
                    "yuan" => "Many amounts have decimals or a yuan sign: yuan (12.34 is ¥12.34).",
                    _ => {
                        "The amounts are whole numbers: fen (1234 is ¥12.34); set \"yuan\" if they are yuan."
                    }
                };
                (unit, reason.to_owned())
            }
        };
        let text = config_text(
            &self.input.display().to_string(),
            found.sheet.as_deref(),
            found.header_row,
            &found.mapping,
            unit,
            &reason,
        );
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.config_out)
            .with_context(|| format!("cannot write {}", self.config_out.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", self.config_out.display()))?;
        if !quiet {
            let mut out = String::new();
            let place = match &found.sheet {
                Some(sheet) => format!("sheet \"{sheet}\", row {}", found.header_row),
                None => format!("row {}", found.header_row),
            };
            out.push_str(&format!(
                "wrote {}: the header row is {place}; amount_unit = \"{unit}\"\n",
                self.config_out.display()
            ));
            for (field, header) in &found.mapping.mapped {
                out.push_str(&format!("  {header} -> {field}\n"));
            }
            for (header, field) in &found.mapping.duplicates {
                out.push_str(&format!(
                    "  {header}: not mapped, {field} is read from \"{}\" already\n",
                    found.mapping.header_of(*field).unwrap_or_default()
                ));
            }
            if !found.mapping.unknown.is_empty() {
                out.push_str(&format!(
                    "  not mapped (kept, not sent): {}\n",
                    found.mapping.unknown.join(", ")
                ));
            }
            let missing = found.mapping.missing_required();
            if !missing.is_empty() {
                let names: Vec<&str> = missing.iter().map(|f| f.name()).collect();
                out.push_str(&format!(
                    "  required, with no column found: {} (see [defaults] in the config)\n",
                    names.join(", ")
                ));
            }
            let _ = std::io::stdout().write_all(out.as_bytes());
        }
        Ok(exit::SUCCESS)
    }
}
