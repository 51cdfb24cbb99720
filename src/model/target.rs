//! Targets: what a rule does when it matches (`-j` / `-g`).

use super::criterion::PortRange;
use super::source::Span;
use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// `-g` (goto) rather than `-j`: a RETURN from the callee goes back to the caller's caller.
    pub goto: bool,
    pub kind: TargetKind,
    pub span: Span,
    /// Statements an nftables rule runs before its verdict, in order (`meta mark set meta mark ^
    /// 0x4000 masquerade`: the mark, then the masquerade). They change the packet once the
    /// rule's matches hold; the matches are not tested again. Empty for iptables rules.
    pub before: Box<[TargetKind]>,
}

/// `--to-destination` / `--to-source`: `[ip[-ip]][:port[-port]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatRange {
    pub addr: Option<(IpAddr, IpAddr)>,
    pub ports: Option<PortRange>,
}

impl fmt::Display for NatRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6 = matches!(self.addr, Some((IpAddr::V6(_), _)));
        if let Some((lo, hi)) = self.addr {
            if v6 && self.ports.is_some() {
                f.write_str("[")?;
            }
            write!(f, "{lo}")?;
            if hi != lo {
                write!(f, "-{hi}")?;
            }
            if v6 && self.ports.is_some() {
                f.write_str("]")?;
            }
        }
        if let Some(p) = self.ports {
            if p.lo == p.hi {
                write!(f, ":{}", p.lo)?;
            } else {
                write!(f, ":{}-{}", p.lo, p.hi)?;
            }
        }
        Ok(())
    }
}

/// How a MARK target changes the mark, in the kernel's one form: `mark = (mark & !mask) ^ value`.
/// Two operations are equal when they do the same thing, whichever option wrote them.
#[derive(Clone, Copy, Debug)]
pub struct MarkOp {
    pub value: u32,
    pub mask: u32,
    /// The option the rule was written with, so it prints back as written.
    pub form: MarkForm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MarkForm {
    SetXmark,
    SetMark,
    OrMark,
    XorMark,
    AndMark,
}

impl PartialEq for MarkOp {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl Eq for MarkOp {}

impl MarkOp {
    pub fn apply(&self, mark: u32) -> u32 {
        (mark & !self.mask) ^ self.value
    }

    /// The normalised form iptables-save prints (`--set-xmark value/mask`), which is what equality means.
    pub fn canonical(&self) -> (u32, u32) {
        (self.value, self.mask)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TargetKind {
    /// Jump or goto to a user-defined chain.
    Chain(Box<str>),
    Accept,
    Drop,
    Return,
    Reject {
        with: Option<Box<str>>,
    },
    /// The range is boxed: it is as large as the rest of a target together.
    Dnat {
        to: Option<Box<NatRange>>,
        flags: Vec<Box<str>>,
    },
    Snat {
        to: Option<Box<NatRange>>,
        flags: Vec<Box<str>>,
    },
    Masquerade {
        to_ports: Option<PortRange>,
        flags: Vec<Box<str>>,
    },
    Redirect {
        to_ports: Option<PortRange>,
        flags: Vec<Box<str>>,
    },
    Mark(MarkOp),
    ConnMark {
        args: Vec<Box<str>>,
    },
    Log {
        args: Vec<Box<str>>,
    },
    /// An nftables verdict map: the verdict of the element the packet's key (or a random number)
    /// finds; nothing when none does.
    Vmap(Box<super::nft::Vmap>),
    /// An extension target kptrace does not model (e.g. `CT`, `NFQUEUE`, `TPROXY`), kept verbatim.
    Other {
        name: Box<str>,
        args: Vec<Box<str>>,
    },
}

impl TargetKind {
    /// The name as written after `-j`.
    pub fn name(&self) -> &str {
        match self {
            TargetKind::Chain(c) => c,
            TargetKind::Accept => "ACCEPT",
            TargetKind::Drop => "DROP",
            TargetKind::Return => "RETURN",
            TargetKind::Reject { .. } => "REJECT",
            TargetKind::Dnat { .. } => "DNAT",
            TargetKind::Snat { .. } => "SNAT",
            TargetKind::Masquerade { .. } => "MASQUERADE",
            TargetKind::Redirect { .. } => "REDIRECT",
            TargetKind::Mark(_) => "MARK",
            TargetKind::ConnMark { .. } => "CONNMARK",
            TargetKind::Log { .. } => "LOG",
            TargetKind::Vmap(_) => "vmap",
            TargetKind::Other { name, .. } => name,
        }
    }

    /// Whether the target ends the traversal of the current chain (for this table).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TargetKind::Accept
                | TargetKind::Drop
                | TargetKind::Reject { .. }
                | TargetKind::Return
                | TargetKind::Dnat { .. }
                | TargetKind::Snat { .. }
                | TargetKind::Masquerade { .. }
                | TargetKind::Redirect { .. }
        )
    }
}

/// Extension targets that stop the packet's traversal (verdict NF_QUEUE / stolen), so the engine must
/// not continue after them.
pub fn other_target_is_terminal(name: &str) -> bool {
    matches!(name, "NFQUEUE" | "QUEUE" | "SYNPROXY" | "TPROXY")
}
