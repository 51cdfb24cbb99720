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
pub fn listing<R, C>(out: &mut String, header: &[&str], rows: R)
where
    R: IntoIterator<Item = C>,
    C: IntoIterator,
    C::Item: AsRef<str>,
{
    use std::io::Write;
    // Written straight after what `out` already holds: a 70,000-row listing is not copied.
    let before = out.len();
    let mut tw = tabwriter::TabWriter::new(std::mem::take(out).into_bytes())
        .minwidth(0)
        .padding(2)
        .ansi(true);
    let mut line = String::new();
    let mut put = |cells: &mut dyn Iterator<Item = &str>| {
        line.clear();
        line.push(' ');
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                line.push('\t');
            }
            // A tab or a line break inside a cell would start another cell or row.
            line.extend(
                cell.chars()
                    .map(|c| if c == '\t' || c == '\n' { ' ' } else { c }),
            );
        }
        line.push('\n');
        let _ = tw.write_all(line.as_bytes());
    };
    put(&mut header.iter().copied());
    for row in rows {
        let cells: Vec<C::Item> = row.into_iter().collect();
        put(&mut cells.iter().map(|c| c.as_ref()));
    }
    let _ = tw.flush();
    let bytes = tw.into_inner().unwrap_or_default();
    *out = String::from_utf8(bytes).unwrap_or_default();
    // The last column is never padded; only a cell ending in blanks leaves any to trim.
    if out[before..].contains(" \n") {
        let text = out.split_off(before);
        for l in text.lines() {
            *out += l.trim_end();
            out.push('\n');
        }
    }
}
