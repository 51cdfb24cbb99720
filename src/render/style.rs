//! Terminal styles. Output goes through anstream, which drops them for pipes and under NO_COLOR.

use anstyle::{AnsiColor, Style};

pub const BOLD: Style = Style::new().bold();
pub const BAD: Style = AnsiColor::Red.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default();
pub const GOOD: Style = AnsiColor::Green.on_default();
pub const DIM: Style = Style::new().dimmed();

pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// A borderless table that reads well when pasted into a chat or a ticket. On a terminal it fits
/// the terminal's width (or `COLUMNS`, when exported); piped, rows are never wrapped.
pub fn table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| *w >= 20)
    {
        t.set_width(w);
    }
    t
}

/// The widest whitespace-free token of each column (header included): an address, a port, a
/// chain name or a number, which the table must never split across lines.
fn token_widths(t: &comfy_table::Table, whole: &[usize]) -> Vec<usize> {
    use unicode_width::UnicodeWidthStr;
    let mut widths: Vec<usize> = Vec::new();
    let rows = t.header().into_iter().chain(t.row_iter());
    for row in rows {
        for (i, cell) in row.cell_iter().enumerate() {
            let text = cell.content();
            let w = if whole.contains(&i) {
                text.lines().map(|l| l.width()).max().unwrap_or(0)
            } else {
                text.split_whitespace()
                    .map(|tok| tok.width())
                    .max()
                    .unwrap_or(0)
            };
            if widths.len() <= i {
                widths.resize(i + 1, 0);
            }
            widths[i] = widths[i].max(w);
        }
    }
    widths
}

/// The width of each column with its cells unwrapped.
fn content_widths(t: &comfy_table::Table) -> Vec<usize> {
    use unicode_width::UnicodeWidthStr;
    let mut widths: Vec<usize> = Vec::new();
    for row in t.header().into_iter().chain(t.row_iter()) {
        for (i, cell) in row.cell_iter().enumerate() {
            let w = cell.content().lines().map(|l| l.width()).max().unwrap_or(0);
            if widths.len() <= i {
                widths.resize(i + 1, 0);
            }
            widths[i] = widths[i].max(w);
        }
    }
    widths
}

/// The widest line of column `i` when its cells are wrapped at blanks to `w` columns.
fn wrapped_width(t: &comfy_table::Table, i: usize, w: usize) -> usize {
    use unicode_width::UnicodeWidthStr;
    let opts = textwrap::Options::new(w.max(1))
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    t.header()
        .into_iter()
        .chain(t.row_iter())
        .filter_map(|row| row.cell_iter().nth(i))
        .flat_map(|cell| {
            let text = cell.content();
            text.lines()
                .flat_map(|l| textwrap::wrap(l, &opts))
                .map(|l| l.width())
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap_or(0)
}

/// Fits the table to its width without splitting a token: columns in `droppable` (least needed
/// first) are hidden while the unwrapped table is too wide, and every column keeps at least its
/// widest token, so only prose wraps, at blanks.
///
/// Cells of the columns in `whole` are never wrapped (`yes, line 199` reads as one).
pub fn fit(
    t: &mut comfy_table::Table,
    droppable: &[usize],
    short: &[(usize, &str)],
    whole: &[usize],
) {
    let Some(width) = t.width().map(usize::from) else {
        return;
    };
    let mut tokens = token_widths(t, whole);
    // Headers wider than their column's cells give way to a shorter name when the tokens alone
    // are wider than the screen.
    if tokens.iter().map(|w| w + 2).sum::<usize>() > width && !short.is_empty() {
        if let Some(h) = t.header() {
            let mut cells: Vec<String> = h.cell_iter().map(|c| c.content()).collect();
            for (i, name) in short {
                if let Some(c) = cells.get_mut(*i) {
                    *c = name.to_string();
                }
            }
            t.set_header(cells);
            tokens = token_widths(t, whole);
        }
    }
    let content = content_widths(t);
    // comfy-table's NOTHING preset pads each cell with a blank on both sides.
    let total = |hidden: &[usize]| -> usize {
        content
            .iter()
            .enumerate()
            .filter(|(i, _)| !hidden.contains(i))
            .map(|(_, w)| w + 2)
            .sum()
    };
    let mut hidden: Vec<usize> = (0..content.len())
        .filter(|i| {
            t.column(*i).is_some_and(|c| {
                matches!(c.constraint(), Some(comfy_table::ColumnConstraint::Hidden))
            })
        })
        .collect();
    for &d in droppable {
        if total(&hidden) <= width {
            break;
        }
        if !hidden.contains(&d) {
            hidden.push(d);
            if let Some(c) = t.column_mut(d) {
                c.set_constraint(comfy_table::ColumnConstraint::Hidden);
            }
        }
    }
    // Shrink the column with the most room to give (a cell of several words) first, as far as
    // needed but never below its widest token, so cells that are one address or number stay on
    // one line. A column wrapped at a width may need less: it keeps what its wrapped cells use.
    // Cells kept whole that cannot all fit wrap at blanks like the rest.
    let visible_tokens = |tokens: &[usize]| -> usize {
        (0..tokens.len())
            .filter(|i| !hidden.contains(i))
            .map(|i| tokens[i] + 2)
            .sum()
    };
    if visible_tokens(&tokens) > width {
        tokens = token_widths(t, &[]);
    }
    let mut widths = content.clone();
    let used = |widths: &[usize]| -> usize {
        (0..widths.len())
            .filter(|i| !hidden.contains(i))
            .map(|i| widths[i] + 2)
            .sum()
    };
    // Rounds: the excess is shared among the columns in proportion to what they can give, first
    // among those with room for a whole word or more (a cell of several words), then any.
    for min_slack in [6, 6, 1, 1] {
        let excess = used(&widths).saturating_sub(width);
        if excess == 0 {
            break;
        }
        let slack: Vec<usize> = (0..widths.len())
            .map(|i| {
                let s = widths[i].saturating_sub(tokens[i]);
                if hidden.contains(&i) || s < min_slack {
                    0
                } else {
                    s
                }
            })
            .collect();
        let sum: usize = slack.iter().sum();
        if sum == 0 {
            continue;
        }
        let mut cuts: Vec<usize> = slack.iter().map(|s| excess * s / sum).collect();
        let left = excess.saturating_sub(cuts.iter().sum());
        if let Some(i) = (0..slack.len()).max_by_key(|&i| (slack[i], std::cmp::Reverse(i))) {
            cuts[i] += left;
        }
        for i in 0..widths.len() {
            if cuts[i] > 0 {
                let target = widths[i].saturating_sub(cuts[i]).max(tokens[i]);
                widths[i] = wrapped_width(t, i, target);
            }
        }
    }
    for (i, w) in widths.iter().enumerate() {
        if hidden.contains(&i) {
            continue;
        }
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(comfy_table::ColumnConstraint::Absolute(
                comfy_table::Width::Fixed(*w as u16 + 2),
            ));
        }
    }
}

/// The width output is laid out for: the terminal's (or an exported `COLUMNS`); None when piped,
/// where nothing is wrapped.
pub fn out_width() -> Option<usize> {
    table().width().map(usize::from)
}

/// A line of prose fitted to the output's width: wrapped at blanks only (an address, a chain
/// name or a number is never split), continuation lines indented by `indent`. Ends with a newline.
pub fn prose(line: &str, indent: usize) -> String {
    let line = line.trim_end_matches('\n');
    let Some(w) = out_width() else {
        return format!("{line}\n");
    };
    let pad = " ".repeat(indent);
    let opts = textwrap::Options::new(w)
        .subsequent_indent(&pad)
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    let mut out = textwrap::wrap(line, opts).join("\n");
    out.push('\n');
    out
}

/// The table as text, without the blanks comfy-table pads the last column with: pasted into a chat,
/// trailing blanks only make lines wrap.
pub fn finish(t: &comfy_table::Table) -> String {
    let mut out = String::new();
    for line in t.lines() {
        out += line.trim_end();
        out.push('\n');
    }
    out
}

/// The cells of some rows of a listing, in one buffer: a 70,000-row listing is a few allocations
/// rather than half a million strings.
#[derive(Default)]
pub struct Cells {
    text: String,
    ends: Vec<u32>,
}

impl Cells {
    /// Appends the next cell, row after row. A tab or line break in it becomes a blank: it would
    /// misalign its row or start another.
    pub fn push(&mut self, cell: impl std::fmt::Display) {
        use std::fmt::Write;
        let start = self.text.len();
        let _ = write!(self.text, "{cell}");
        if self.text[start..].contains(['\t', '\n']) {
            let fixed = self.text[start..].replace(['\t', '\n'], " ");
            self.text.truncate(start);
            self.text.push_str(&fixed);
        }
        self.ends.push(self.text.len() as u32);
    }

    fn cell(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// The cells of row `r`, of `columns` cells each.
    fn row(&self, r: usize, columns: usize) -> impl Iterator<Item = &str> {
        (r * columns..(r + 1) * columns).map(|i| self.cell(i))
    }

    fn rows(&self, columns: usize) -> usize {
        self.ends.len() / columns.max(1)
    }
}

/// A listing: one row per line, columns aligned, laid out as [`table`] lays out a table that fits
/// the screen. For tables as long as a dump's Service list (70,000 rows), where comfy-table would
/// spend most of a second and a hundred megabytes: a listing is read with `grep` and `less -S`, so
/// rows are never wrapped. Cells may hold styles; their width ignores them. Appends to `out` the
/// header and then the rows of each of `rows` in turn, each row one cell per header column.
pub fn listing(out: &mut String, header: &[&str], rows: &[Cells]) {
    listing_fit(out, header, rows, &[])
}

/// [`listing`] on a terminal: columns in `droppable` (least needed first) are left out while the
/// rows are wider than the screen, so the terminal never wraps a row. Piped, every column stays.
pub fn listing_fit(out: &mut String, header: &[&str], rows: &[Cells], droppable: &[usize]) {
    use rayon::prelude::*;
    let columns = header.len();
    let mut head = Cells::default();
    header.iter().for_each(|h| head.push(h));
    // Every column is measured (the last one too, for the fit); rows are laid out on all cores.
    let widest = |cells: &Cells| {
        let mut w = vec![0; columns];
        for r in 0..cells.rows(columns) {
            for (c, cell) in cells.row(r, columns).take(w.len()).enumerate() {
                w[c] = w[c].max(width(cell));
            }
        }
        w
    };
    let all = rows.par_iter().map(widest).reduce(
        || widest(&head),
        |a, b| a.iter().zip(&b).map(|(x, y)| *x.max(y)).collect(),
    );
    let mut shown: Vec<bool> = vec![true; columns];
    if let Some(screen) = out_width() {
        // One leading blank, two between columns.
        let total = |shown: &[bool]| -> usize {
            1 + all
                .iter()
                .zip(shown)
                .filter(|(_, s)| **s)
                .map(|(w, _)| w + 2)
                .sum::<usize>()
                - 2
        };
        // Columns with nothing in them (no NodePort anywhere, no load balancer) go first.
        let blank = |cells: &Cells| -> Vec<bool> {
            let mut b = vec![true; columns];
            for r in 0..cells.rows(columns) {
                for (c, cell) in cells.row(r, columns).take(columns).enumerate() {
                    b[c] &= cell == "–";
                }
            }
            b
        };
        let empty = rows.par_iter().map(blank).reduce(
            || vec![true; columns],
            |a, b| a.iter().zip(&b).map(|(x, y)| *x && *y).collect(),
        );
        let order = (0..columns)
            .filter(|c| empty[*c] && !rows.is_empty())
            .chain(droppable.iter().copied());
        for d in order {
            if total(&shown) <= screen {
                break;
            }
            if d < columns {
                shown[d] = false;
            }
        }
    }
    let keep: Vec<usize> = (0..columns).filter(|c| shown[*c]).collect();
    // Every column but the last shown is padded to its widest cell.
    let widths: Vec<usize> = keep[..keep.len().saturating_sub(1)]
        .iter()
        .map(|&c| all[c])
        .collect();
    let pick = |cells: &Cells, r: usize| -> Vec<String> {
        let row: Vec<&str> = cells.row(r, columns).collect();
        keep.iter().map(|&c| row[c].to_string()).collect()
    };
    let head_row = pick(&head, 0);
    line(out, head_row.iter().map(String::as_str), &widths);
    let pieces: Vec<String> = rows
        .par_iter()
        .map(|cells| {
            let mut s = String::with_capacity(cells.text.len() + cells.ends.len() * 8);
            for r in 0..cells.rows(columns) {
                if keep.len() == columns {
                    line(&mut s, cells.row(r, columns), &widths);
                } else {
                    let row = pick(cells, r);
                    line(&mut s, row.iter().map(String::as_str), &widths);
                }
            }
            s
        })
        .collect();
    out.reserve(pieces.iter().map(String::len).sum());
    for p in pieces {
        out.push_str(&p);
    }
}

/// One row of a listing: a blank, then each cell padded to its column's width and two blanks,
/// the last one as it is; no trailing blanks.
fn line<'c>(out: &mut String, cells: impl Iterator<Item = &'c str>, widths: &[usize]) {
    let start = out.len();
    out.push(' ');
    for (i, cell) in cells.enumerate() {
        out.push_str(cell);
        if let Some(&w) = widths.get(i) {
            out.extend(std::iter::repeat_n(' ', w - width(cell) + 2));
        }
    }
    let kept = out[start..].trim_end().len();
    out.truncate(start + kept);
    out.push('\n');
}

/// How many columns a cell takes on a terminal: styles take none.
fn width(cell: &str) -> usize {
    use unicode_width::UnicodeWidthStr;
    if cell.is_ascii() && !cell.contains('\x1b') {
        return cell.len();
    }
    if !cell.contains('\x1b') {
        return cell.width();
    }
    anstream::adapter::strip_str(cell).to_string().width()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laid_out(header: &[&str], rows: &[&[&str]]) -> String {
        // Two groups of rows, as a caller building them on several cores passes them.
        let (a, b) = rows.split_at(rows.len() / 2);
        let groups: Vec<Cells> = [a, b]
            .iter()
            .map(|rows| {
                let mut cells = Cells::default();
                rows.iter()
                    .flat_map(|r| r.iter())
                    .for_each(|c| cells.push(c));
                cells
            })
            .collect();
        let mut out = String::from("headline\n");
        listing(&mut out, header, &groups);
        out
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_and_styles_take_no_room() {
        let bad = paint(BAD, "0 ✗");
        let out = laid_out(
            &["name", "n", "chain"],
            &[&["a", &bad, "KUBE-SVC-X"], &["longer–name", "12", "–"]],
        );
        let plain = anstream::adapter::strip_str(&out).to_string();
        assert_eq!(
            plain,
            "headline\n name         n    chain\n a            0 ✗  KUBE-SVC-X\n longer–name  12   –\n"
        );
    }

    #[test]
    fn a_line_break_or_tab_in_a_cell_stays_in_its_row_and_no_line_ends_in_blanks() {
        let out = laid_out(&["a", "b"], &[&["x\ty", "two\nlines "], &["z", ""]]);
        assert_eq!(out, "headline\n a    b\n x y  two lines\n z\n");
    }
}
