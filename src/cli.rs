//! Command-line interface: the clap types, nothing else.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "kptrace",
    version,
    about = "Explains what kube-proxy made the kernel do, from an iptables-save dump",
    long_about = "Reads iptables-save output (or a grep of it) and answers what netfilter does with a \
                  Service's traffic: every way in, the chain path, each endpoint's exact share, and \
                  whether the reply is masqueraded.\n\nExample: iptables-save | kptrace svc default/nginx",
    after_long_help = "Exit codes: 0 answered (svc: every way in reaches an endpoint; trace: the \
                       connection is accepted), 1 no such Service (lint: findings at --fail-on), \
                       2 bad command line or unreadable input, 3 svc: some way in certainly fails, \
                       trace: every way the connection ends is dropped or rejected.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Input language; detected from the text when not given.
    #[arg(long, global = true, value_enum)]
    pub input_format: Option<InputFormatArg>,

    /// When to use colour (also off with NO_COLOR, or when output is not a terminal).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the Services a dump holds.
    Ls(LsArgs),
    /// Show every way into a Service, the endpoints each reaches, with what share, and masquerading.
    Svc(SvcArgs),
    /// Trace one packet through the rules.
    Trace(TraceArgs),
    /// Check dumps for rules that would lose, misroute or leak Service traffic (for CI).
    Lint(LintArgs),
    /// Draw a Service's path (--svc) or the whole rule set's chain graph, as Graphviz DOT or Mermaid.
    Graph(GraphArgs),
    /// Print a shell completion script (`kptrace completions bash > /etc/bash_completion.d/kptrace`).
    Completions(CompletionsArgs),
    /// Print the manual page, as roff (`kptrace man > kptrace.1; man ./kptrace.1`).
    Man,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum InputFormatArg {
    Save,
    Script,
    Listing,
    /// nftables text (`nft list ruleset`, or `add …` commands).
    Nft,
    /// `nft -j list ruleset` JSON.
    NftJson,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Hook {
    Prerouting,
    Output,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
    Icmp,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Dump files (`-` or nothing: standard input).
    pub files: Vec<PathBuf>,
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// An address of the node the dump was taken on (repeatable). Loopback is always local.
    #[arg(long = "node-ip", value_name = "IP")]
    pub node_ips: Vec<IpAddr>,
}

#[derive(Args, Debug, Clone)]
pub struct IfaceArgs {
    /// The interface pods' traffic uses on the node (`cni0`, `cali+`…); read from the rules when
    /// they show it, otherwise an interface no rule names.
    #[arg(long, value_name = "IF")]
    pub pod_iface: Option<String>,
    /// The node's uplink, where outside clients arrive and the default route leaves; otherwise an
    /// interface no rule names.
    #[arg(long, value_name = "IF")]
    pub uplink: Option<String>,
}

#[derive(Args, Debug)]
pub struct SvcArgs {
    /// `ns/name`, `name` (with -n, or when one namespace has it), `ns/name:port-name` or
    /// `ns/name:port`, a cluster `IP:port`, or a `KUBE-SVC-…` chain.
    pub service: String,
    /// Dump files (`-` or nothing: standard input).
    pub files: Vec<PathBuf>,
    /// The Service's namespace, as kubectl takes it.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Human)]
    pub format: Format,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub ifaces: IfaceArgs,
    /// Show the chain path of every outcome, not only the first.
    #[arg(long)]
    pub all_paths: bool,
    /// List every endpoint, also when many share the traffic equally (grouped otherwise).
    #[arg(long)]
    pub endpoints: bool,
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Dump file (`-` or nothing: standard input).
    pub file: Option<PathBuf>,
    /// Source address of the packet.
    #[arg(long)]
    pub src: IpAddr,
    /// Destination address of the packet.
    #[arg(long)]
    pub dst: IpAddr,
    /// Destination port.
    /// Destination port; may be left out when the destination is a Service address with one port.
    #[arg(long)]
    pub dport: Option<u16>,
    /// Source port.
    #[arg(long, default_value_t = 40000)]
    pub sport: u16,
    /// Protocol (as iptables' `-p`); default: the Service's at that address, else tcp.
    #[arg(long, short = 'p', value_enum)]
    pub proto: Option<Proto>,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Where the packet enters: from the network (prerouting) or from a process on the node (output).
    /// Default: output when the source is a node address, else prerouting.
    #[arg(long, value_enum)]
    pub hook: Option<Hook>,
    /// Interface the packet arrives on (prerouting).
    #[arg(long, value_name = "IF")]
    pub in_iface: Option<String>,
    /// Interface the packet leaves by (otherwise the routes below decide, or it is a condition).
    #[arg(long, value_name = "IF")]
    pub out_iface: Option<String>,
    #[command(flatten)]
    pub ifaces: IfaceArgs,
    /// The packet's mark before the rules see it.
    #[arg(long, value_parser = parse_mark, default_value = "0")]
    pub mark: u32,
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

fn parse_mark(s: &str) -> Result<u32, String> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).map_err(|e| e.to_string()),
        None => s
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string()),
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// Findings with the offending lines shown.
    Human,
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other viewers.
    Sarif,
    /// GitHub Actions workflow annotations.
    Github,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LintScope {
    /// kube-proxy's and kubelet's rules, and whatever touches a Service.
    Kube,
    /// Every chain of the dump.
    All,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Note,
    Never,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Dump files (`-` or nothing: standard input).
    pub files: Vec<PathBuf>,
    #[arg(long, short = 'f', value_enum, default_value_t = LintFormat::Human)]
    pub format: LintFormat,
    /// Lowest severity that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
    /// Turn a rule off (name or code; repeatable).
    #[arg(long, value_name = "RULE")]
    pub allow: Vec<String>,
    /// Report a rule's findings as errors (name or code; repeatable).
    #[arg(long, value_name = "RULE")]
    pub deny: Vec<String>,
    /// Silence the findings recorded in this baseline file.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Record the current findings as a baseline file, then exit 0.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    #[command(flatten)]
    pub ifaces: IfaceArgs,
    /// Which chains' hygiene findings (orphans, duplicates, shadowed rules…) count: `kube`
    /// reports other tools' chains that touch no Service as notes; `all` at full severity.
    #[arg(long, value_enum, default_value_t = LintScope::Kube)]
    pub scope: LintScope,
    /// Largest difference between endpoint shares that `uneven-distribution` accepts.
    #[arg(long, default_value_t = 1e-4, value_name = "SHARE")]
    pub uneven_tolerance: f64,
    /// Print a rule's documentation and exit.
    #[arg(long, value_name = "RULE", exclusive = true)]
    pub explain: Option<String>,
    /// List the rules and exit.
    #[arg(long, exclusive = true)]
    pub list_rules: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz (`| dot -Tsvg > graph.svg`).
    Dot,
    /// Mermaid flowchart (renders in GitHub Markdown).
    Mermaid,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// Dump file (`-` or nothing: standard input).
    pub file: Option<PathBuf>,
    /// Draw only what this Service's traffic walks (`ns/name`, `ns/name:port`, `IP:port`, chain).
    #[arg(long, value_name = "SERVICE")]
    pub svc: Option<String>,
    #[arg(long, short = 'f', value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// Draw every per-Service chain instead of one node per family (KUBE-SVC-*, KUBE-SEP-*…).
    #[arg(long)]
    pub no_collapse: bool,
    #[command(flatten)]
    pub node: NodeArgs,
}
