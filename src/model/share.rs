//! How a share of connections is written: a percentage to two places (`33.33%`, `50%`) and the
//! exact value (`0.333333333022892`). Findings and renderings write shares the same way.

/// `p` as a percentage: whole when it is whole, else to two places.
pub fn share(p: f64) -> String {
    let pct = p * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{pct:.0}%")
    } else {
        format!("{pct:.2}%")
    }
}

/// `p` to 15 places, without trailing zeros.
pub fn exact(p: f64) -> String {
    let s = format!("{p:.15}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}
