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

/// A borderless table that reads well when pasted into a chat or a ticket.
pub fn table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t
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

/// A listing: one row per line, columns aligned, laid out as [`table`] lays out a table that fits
/// the screen. For tables as long as a dump's Service list (70,000 rows), where comfy-table would
/// spend most of a second and a hundred megabytes: a listing is read with `grep` and `less -S`, so
/// rows are never wrapped. Cells may hold styles; their width ignores them. Appends to `out`.
pub fn listing(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    use rayon::prelude::*;
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let cols = header.len();
    // Every column but the last is as wide as its widest cell; rows are laid out on all cores.
    let widths: Vec<usize> = (0..cols.saturating_sub(1))
        .map(|c| {
            rows.par_iter()
                .with_min_len(4096)
                .map(|r| r.get(c).map_or(0, |cell| width(cell)))
                .max()
                .unwrap_or(0)
                .max(width(&header[c]))
        })
        .collect();
    out.reserve(rows.len() * 64);
    line(out, &header, &widths);
    let pieces: Vec<String> = rows
        .par_chunks(4096)
        .map(|chunk| {
            let mut s = String::with_capacity(chunk.len() * 64);
            for r in chunk {
                line(&mut s, r, &widths);
            }
            s
        })
        .collect();
    for p in pieces {
        out.push_str(&p);
    }
}

/// One row of a listing: a blank, then each cell padded to its column's width and two blanks,
/// the last one as it is; no trailing blanks.
fn line(out: &mut String, cells: &[String], widths: &[usize]) {
    let start = out.len();
    out.push(' ');
    for (i, cell) in cells.iter().enumerate() {
        // A line break inside a cell would start another row; a tab would misalign it.
        let cell = if cell.contains(['\t', '\n']) {
            std::borrow::Cow::Owned(cell.replace(['\t', '\n'], " "))
        } else {
            std::borrow::Cow::Borrowed(cell.as_str())
        };
        out.push_str(&cell);
        if let Some(&w) = widths.get(i) {
            let pad = w - width(&cell) + 2;
            out.extend(std::iter::repeat_n(' ', pad));
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
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        let mut out = String::from("headline\n");
        listing(&mut out, header, &rows);
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
