//! `nft -j list ruleset`: libnftables JSON, read with the `nftables` crate's serde model and
//! written out as the text `nft list ruleset` prints, which [`super::nft`] reads. One reader of
//! rules for both forms means the same ruleset gives the same answers whichever form holds it;
//! line numbers in answers are those of that text (a note says so).
//!
//! Objects the crate's model does not know (a statement newer than it) do not make the input
//! unreadable: the rule keeps a statement kptrace cannot decide, which may or may not match.

use crate::error::{ParseError, ParseErrorKind};
use crate::model::{InputFormat, Ruleset, Source, Span};
use nftables::expr::{Expression, NamedExpression, SetItem, Verdict};
use nftables::schema::{NfListObject, NfObject};
use nftables::stmt::Statement;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Whether the text is libnftables JSON (`{"nftables": [...]}`).
pub fn looks_like(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('{') && t[..t.len().min(64)].contains("\"nftables\"")
}

/// The name serde gives a value (`"prerouting"`, `"fully-random"`, `"l4proto"`).
fn name<T: serde::Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => "unknown".into(),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Continue => "continue".into(),
        Verdict::Return => "return".into(),
        Verdict::Jump(t) => format!("jump {}", t.target),
        Verdict::Goto(t) => format!("goto {}", t.target),
    }
}

fn expr(e: &Expression) -> String {
    match e {
        Expression::String(s) => {
            if s.contains(char::is_whitespace) || s.is_empty() {
                quote(s)
            } else {
                s.to_string()
            }
        }
        Expression::Number(n) => n.to_string(),
        Expression::Boolean(b) => b.to_string(),
        Expression::List(v) => v.iter().map(expr).collect::<Vec<_>>().join(","),
        Expression::BinaryOperation(b) => {
            use nftables::expr::BinaryOperation as B;
            match b.as_ref() {
                B::AND(a, c) => format!("{} & {}", expr(a), expr(c)),
                B::OR(v) => v.iter().map(expr).collect::<Vec<_>>().join(" | "),
                B::XOR(a, c) => format!("{} ^ {}", expr(a), expr(c)),
                B::LSHIFT(a, c) => format!("{} << {}", expr(a), expr(c)),
                B::RSHIFT(a, c) => format!("{} >> {}", expr(a), expr(c)),
            }
        }
        Expression::Verdict(v) => verdict(v),
        Expression::Named(n) => named(n),
        Expression::Range(r) => format!("{}-{}", expr(&r.range[0]), expr(&r.range[1])),
    }
}

fn named(n: &NamedExpression) -> String {
    match n {
        NamedExpression::Concat(v) => v.iter().map(expr).collect::<Vec<_>>().join(" . "),
        NamedExpression::Set(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    SetItem::Element(e) => element(e),
                    SetItem::Mapping(k, v) => format!("{} : {}", expr(k), expr(v)),
                    SetItem::MappingStatement(k, s) => format!("{} : {}", expr(k), stmt(s)),
                })
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        NamedExpression::Prefix(p) => format!("{}/{}", expr(&p.addr), p.len),
        NamedExpression::Payload(nftables::expr::Payload::PayloadField(f)) => {
            format!("{} {}", f.protocol, f.field)
        }
        NamedExpression::Meta(m) => format!("meta {}", name(&m.key)),
        NamedExpression::CT(c) => format!("ct {}", c.key),
        NamedExpression::Numgen(g) => format!("numgen {} mod {}", name(&g.mode), g.ng_mod),
        NamedExpression::Fib(f) => {
            let mut flags: Vec<String> = f.flags.iter().map(name).collect();
            flags.sort();
            format!("fib {} {}", flags.join(" . "), name(&f.result))
        }
        NamedExpression::Elem(e) => {
            let mut s = expr(&e.val);
            if let Some(c) = &e.comment {
                s += &format!(" comment {}", quote(c));
            }
            s
        }
        _ => "unknown-expression".into(),
    }
}

fn stmt(s: &Statement) -> String {
    match s {
        Statement::Accept(_) => "accept".into(),
        Statement::Drop(_) => "drop".into(),
        Statement::Continue(_) => "continue".into(),
        Statement::Return(_) => "return".into(),
        Statement::Jump(t) => format!("jump {}", t.target),
        Statement::Goto(t) => format!("goto {}", t.target),
        Statement::Match(m) => {
            let op = name(&m.op);
            match op.as_str() {
                "==" | "in" => format!("{} {}", expr(&m.left), expr(&m.right)),
                _ => format!("{} {op} {}", expr(&m.left), expr(&m.right)),
            }
        }
        Statement::Counter(_) => "counter".into(),
        Statement::Mangle(m) => format!("{} set {}", expr(&m.key), expr(&m.value)),
        Statement::DNAT(n) | Statement::SNAT(n) => {
            let verb = if matches!(s, Statement::DNAT(_)) {
                "dnat"
            } else {
                "snat"
            };
            let Some(n) = n else { return verb.into() };
            let addr = n.addr.as_ref().map(expr).unwrap_or_default();
            let to = match (&n.port, addr.contains(':')) {
                (Some(p), true) => format!("[{addr}]:{}", expr(p)),
                (Some(p), false) => format!("{addr}:{}", expr(p)),
                (None, _) => addr,
            };
            format!("{verb} to {to}{}", nat_flags(n))
        }
        Statement::Masquerade(n) => {
            format!(
                "masquerade{}",
                n.as_ref().map(nat_flags).unwrap_or_default()
            )
        }
        Statement::Reject(_) => "reject".into(),
        Statement::VerdictMap(v) => format!("{} vmap {}", expr(&v.key), expr(&v.data)),
        Statement::Set(op) => format!("{} @{} {{ {} }}", name(&op.op), op.set, expr(&op.elem)),
        Statement::Notrack => "notrack".into(),
        Statement::Log(_) => "log".into(),
        _ => "unknown-statement".into(),
    }
}

fn nat_flags(n: &nftables::stmt::NAT) -> String {
    let mut flags: Vec<String> = n.flags.iter().flatten().map(name).collect();
    flags.sort();
    flags.iter().map(|f| format!(" {f}")).collect()
}

#[derive(Default)]
struct TableText {
    family: String,
    comment: Option<String>,
    chains: BTreeMap<String, (Option<String>, Vec<String>)>,
    order: Vec<String>,
    sets: Vec<String>,
}

/// One set or map element as text: `key` or `key : verdict`, with its comment.
/// A set or map as `nft list` prints it (`value`: a map's value type), for the text reader.
fn set_block(
    kind: &str,
    name: &str,
    value: Option<&str>,
    flags: &[String],
    comment: Option<&str>,
    items: Option<Vec<String>>,
) -> String {
    let mut b = format!("{kind} {name} {{\n");
    if let Some(v) = value {
        let _ = writeln!(b, "type any : {v}");
    }
    if !flags.is_empty() {
        let _ = writeln!(b, "flags {}", flags.join(","));
    }
    if let Some(c) = comment {
        let _ = writeln!(b, "comment {}", quote(c));
    }
    if let Some(items) = items {
        let _ = writeln!(b, "elements = {{ {} }}", items.join(",\n"));
    }
    b + "}\n"
}

fn element(e: &Expression) -> String {
    match e {
        Expression::List(kv) if kv.len() == 2 => format!("{} : {}", expr(&kv[0]), expr(&kv[1])),
        e => expr(e),
    }
}

/// Reads `nft -j` output.
pub fn parse(source: Arc<Source>) -> Result<Ruleset, Vec<ParseError>> {
    let text: &str = &source.text;
    let at = |line: usize, col: usize| -> Span {
        let off = text
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum::<usize>()
            + col.saturating_sub(1);
        let off = off.min(text.len());
        Span::new(off, (off + 1).min(text.len()))
    };
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        vec![ParseError::new(
            at(e.line(), e.column()),
            ParseErrorKind::Other(format!("invalid nftables JSON: {e}")),
        )]
    })?;
    let Some(objects) = doc.get("nftables").and_then(|v| v.as_array()) else {
        return Err(vec![ParseError::new(
            Span::new(0, 1.min(text.len())),
            ParseErrorKind::Other("not `nft -j` output: no `nftables` array".into()),
        )]);
    };
    let mut tables: BTreeMap<String, TableText> = BTreeMap::new();
    let mut table_order: Vec<String> = Vec::new();
    let mut unknown = 0usize;
    let mut table = |family: &str, name: &str, tables: &mut BTreeMap<String, TableText>| {
        let key = format!("{family} {name}");
        if !tables.contains_key(&key) {
            table_order.push(key.clone());
        }
        tables.entry(key).or_insert_with(|| TableText {
            family: family.into(),
            ..TableText::default()
        });
        format!("{family} {name}")
    };
    for o in objects {
        let obj: NfObject = match serde_json::from_value(o.clone()) {
            Ok(x) => x,
            Err(_) => {
                // The crate's model reads a map's key types but not a `verdict` value type
                // (kube-proxy's maps): its fields are read here, its elements with the crate.
                if let Some((kind, m)) = o
                    .get("map")
                    .map(|m| ("map", m))
                    .or_else(|| o.get("set").map(|m| ("set", m)))
                {
                    let (f, t, n) = (
                        m["family"].as_str().unwrap_or("ip"),
                        m["table"].as_str().unwrap_or(""),
                        m["name"].as_str().unwrap_or(""),
                    );
                    let key = table(f, t, &mut tables);
                    let flags: Vec<String> = match &m["flags"] {
                        serde_json::Value::String(s) => vec![s.clone()],
                        serde_json::Value::Array(a) => a
                            .iter()
                            .filter_map(|x| Some(x.as_str()?.to_string()))
                            .collect(),
                        _ => Vec::new(),
                    };
                    let items: Option<Vec<String>> = m["elem"].as_array().map(|els| {
                        els.iter()
                            .map(|e| match serde_json::from_value::<Expression>(e.clone()) {
                                Ok(x) => element(&x),
                                Err(_) => "unknown-element".into(),
                            })
                            .collect()
                    });
                    let value = (kind == "map").then(|| m["map"].as_str().unwrap_or("any"));
                    let b = set_block(kind, n, value, &flags, m["comment"].as_str(), items);
                    tables.get_mut(&key).unwrap().sets.push(b);
                    continue;
                }
                // A rule with a statement the model does not know keeps what can be said of it.
                if let Some(r) = o.get("rule") {
                    let (f, t, c) = (
                        r["family"].as_str().unwrap_or("ip"),
                        r["table"].as_str().unwrap_or(""),
                        r["chain"].as_str().unwrap_or(""),
                    );
                    let key = table(f, t, &mut tables);
                    let tt = tables.get_mut(&key).unwrap();
                    if !tt.chains.contains_key(c) {
                        tt.order.push(c.to_string());
                    }
                    // Statement by statement: the crate reads most; a masquerade with its flags
                    // as one string it does not, which is how `nft -j` prints one flag.
                    let line: Vec<String> = r["expr"]
                        .as_array()
                        .map(|a| a.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .map(|st| match serde_json::from_value::<Statement>(st.clone()) {
                            Ok(x) => stmt(&x),
                            Err(_) => match st.get("masquerade") {
                                Some(m) => {
                                    let flags = match &m["flags"] {
                                        serde_json::Value::String(s) => format!(" {s}"),
                                        serde_json::Value::Array(a) => a
                                            .iter()
                                            .filter_map(|x| x.as_str())
                                            .map(|x| format!(" {x}"))
                                            .collect(),
                                        _ => String::new(),
                                    };
                                    format!("masquerade{flags}")
                                }
                                None => "unknown-statement".into(),
                            },
                        })
                        .collect();
                    tt.chains
                        .entry(c.to_string())
                        .or_default()
                        .1
                        .push(line.join(" "));
                }
                if o.get("rule").is_none() {
                    unknown += 1;
                }
                continue;
            }
        };
        let NfObject::ListObject(obj) = obj else {
            continue;
        };
        match obj {
            NfListObject::Table(t) => {
                table(&name(&t.family), &t.name, &mut tables);
            }
            NfListObject::Chain(c) => {
                let key = table(&name(&c.family), &c.table, &mut tables);
                let tt = tables.get_mut(&key).unwrap();
                if !tt.chains.contains_key(c.name.as_ref()) {
                    tt.order.push(c.name.to_string());
                }
                let spec = match (c._type, c.hook) {
                    (Some(ty), Some(hook)) => Some(format!(
                        "type {} hook {} priority {}; policy {};",
                        name(&ty),
                        name(&hook),
                        c.prio.unwrap_or(0),
                        c.policy
                            .map(|p| name(&p))
                            .unwrap_or_else(|| "accept".into())
                    )),
                    _ => None,
                };
                tt.chains.entry(c.name.to_string()).or_default().0 = spec;
            }
            NfListObject::Rule(r) => {
                let key = table(&name(&r.family), &r.table, &mut tables);
                let tt = tables.get_mut(&key).unwrap();
                if !tt.chains.contains_key(r.chain.as_ref()) {
                    tt.order.push(r.chain.to_string());
                }
                let mut line: Vec<String> = r.expr.iter().map(stmt).collect();
                if let Some(c) = &r.comment {
                    line.push(format!("comment {}", quote(c)));
                }
                tt.chains
                    .entry(r.chain.to_string())
                    .or_default()
                    .1
                    .push(line.join(" "));
            }
            NfListObject::Set(s) => {
                let key = table(&name(&s.family), &s.table, &mut tables);
                let flags: Vec<String> = s.flags.iter().flatten().map(name).collect();
                let items = s.elem.as_ref().map(|els| els.iter().map(element).collect());
                let b = set_block("set", &s.name, None, &flags, s.comment.as_deref(), items);
                tables.get_mut(&key).unwrap().sets.push(b);
            }
            NfListObject::Map(m) => {
                let key = table(&name(&m.family), &m.table, &mut tables);
                let flags: Vec<String> = m.flags.iter().flatten().map(name).collect();
                let items = m.elem.as_ref().map(|els| els.iter().map(element).collect());
                let value = name(&m.map);
                let b = set_block(
                    "map",
                    &m.name,
                    Some(&value),
                    &flags,
                    m.comment.as_deref(),
                    items,
                );
                tables.get_mut(&key).unwrap().sets.push(b);
            }
            NfListObject::Element(e) => {
                let key = table(&name(&e.family), &e.table, &mut tables);
                let items: Vec<String> = e.elem.iter().map(element).collect();
                // As the add form: after the table, so the set exists.
                tables.get_mut(&key).unwrap().sets.push(format!(
                    "\u{0}add element {key} {} {{ {} }}\n",
                    e.name,
                    items.join(", ")
                ));
            }
            _ => {}
        }
    }
    let mut out = String::new();
    let mut tail = String::new();
    for key in &table_order {
        let t = &tables[key];
        let _ = writeln!(out, "table {key} {{");
        if let Some(c) = &t.comment {
            let _ = writeln!(out, "comment {}", quote(c));
        }
        for s in &t.sets {
            match s.strip_prefix('\u{0}') {
                Some(cmd) => tail += cmd,
                None => out += s,
            }
        }
        for c in &t.order {
            let (spec, rules) = &t.chains[c];
            let _ = writeln!(out, "chain {c} {{");
            if let Some(spec) = spec {
                let _ = writeln!(out, "{spec}");
            }
            for r in rules {
                let _ = writeln!(out, "{r}");
            }
            out += "}\n";
        }
        out += "}\n";
        let _ = t.family.len();
    }
    out += &tail;
    let listed = Source::new(source.name.clone(), out);
    // The text is kptrace's own: an error in it is kptrace's, said once, against the JSON.
    let mut rs = super::nft::parse(listed.clone()).map_err(|errs| {
        let first = errs.first().map(|e| {
            let line = listed.line_of(e.span.start);
            let text = listed.text.lines().nth(line as usize - 1).unwrap_or("");
            format!("{} in `{text}`", e.kind)
        });
        vec![ParseError::new(
            Span::new(0, 1.min(text.len())),
            ParseErrorKind::Other(format!(
                "kptrace could not read the rules of this `nft -j` output as nftables text: {}",
                first.unwrap_or_default()
            )),
        )]
    })?;
    rs.format = InputFormat::NftJson;
    rs.note(
        "read from `nft -j` JSON: line numbers are those of the ruleset as `nft list ruleset` prints it",
        None,
    );
    if unknown > 0 {
        rs.note(
            format!(
                "{unknown} JSON object(s) of a kind kptrace does not read: their rules may match"
            ),
            None,
        );
    }
    Ok(rs)
}
