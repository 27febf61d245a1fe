//! The result table: every row with its ratio to the floor measured in the same run.
use serde::Serialize;

use crate::driver::Outcome;
use crate::floor::Argon2Floor;
use crate::lookup::VerifyVsLookup;

/// The name of the bare-tonic floor's row.
pub const FLOOR: &str = "floor";

/// What a row's throughput is divided by.
#[derive(Debug, Clone, Default)]
pub enum Compare {
    /// A server measured in alternating slices with this row (see `Runner::paired`).
    Paired { to: String, calls_per_sec: f64 },
    /// Cores ÷ one argon2id verify.
    Argon2,
    /// Nothing measured here bounds it.
    #[default]
    None,
}

/// One measured line.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    /// How the load was applied, e.g. `closed 8x16`, `open 1000/s`.
    pub load: String,
    pub calls_per_sec: f64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// `calls_per_sec` ÷ the floor's, filled in by [`Report::finish`].
    pub ratio: Option<f64>,
    /// What `ratio` is to.
    pub ratio_to: Option<String>,
    /// Its throughput, the denominator of `ratio`.
    pub floor_calls_per_sec: Option<f64>,
    /// Bytes authd logged during the window, per 100,000 calls.
    pub log_bytes_per_100k: Option<f64>,
    /// CPU time the server (authd, or the floor) spent per call, µs.
    pub server_us_per_call: Option<f64>,
    /// CPU time the load generator spent per call, µs.
    pub client_us_per_call: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    #[serde(skip)]
    pub compare: Compare,
}

impl Row {
    pub fn new(
        scenario: impl Into<String>,
        load: impl Into<String>,
        outcome: &Outcome,
        compare: Compare,
    ) -> Self {
        let calls = outcome.calls + outcome.errors;
        Self {
            scenario: scenario.into(),
            load: load.into(),
            calls_per_sec: outcome.per_second(),
            errors: outcome.errors,
            p50_ms: outcome.quantile_ms(0.5),
            p99_ms: outcome.quantile_ms(0.99),
            p999_ms: outcome.quantile_ms(0.999),
            ratio: None,
            ratio_to: None,
            floor_calls_per_sec: None,
            log_bytes_per_100k: outcome
                .spent
                .log_bytes
                .filter(|_| calls > 0)
                .map(|bytes| bytes as f64 * 100_000.0 / calls as f64),
            server_us_per_call: outcome
                .spent
                .cpu
                .filter(|_| calls > 0)
                .map(|cpu| cpu.as_secs_f64() * 1e6 / calls as f64),
            client_us_per_call: outcome
                .spent
                .client_cpu
                .filter(|_| calls > 0)
                .map(|cpu| cpu.as_secs_f64() * 1e6 / calls as f64),
            first_error: outcome.first_error.clone(),
            compare,
        }
    }
}

/// The run's settings, as printed above the table.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub authd_bin: String,
    pub signing: &'static str,
    pub transport: &'static str,
    pub database: &'static str,
    pub cores: usize,
    pub connections: usize,
    pub streams: usize,
    /// Open loop at this many calls/s instead of the closed loop.
    pub rate: Option<f64>,
    pub warmup_ms: u128,
    pub duration_ms: u128,
    pub validate_reply_bytes: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Argon2Json {
    m_kib: u32,
    t: u32,
    p: u32,
    cores: usize,
    verify_ms: f64,
    logins_per_sec: f64,
    /// One verify while every core runs one, and what the cores then do per second.
    verify_all_cores_ms: Option<f64>,
    logins_per_sec_all_cores: Option<f64>,
}

/// Everything a run printed, for `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub header: Header,
    argon2_floor: Option<Argon2Json>,
    pub rows: Vec<Row>,
    /// The verify-vs-lookup scenario, on PostgreSQL.
    pub verify_vs_lookup: Option<VerifyVsLookup>,
}

impl Report {
    /// Fill in each row's ratio from the floors of this run.
    pub fn finish(header: Header, argon2: Option<Argon2Floor>, mut rows: Vec<Row>) -> Self {
        for row in &mut rows {
            let (to, floor) = match &row.compare {
                Compare::Paired { to, calls_per_sec } => (to.clone(), Some(*calls_per_sec)),
                Compare::Argon2 => ("argon2 floor".into(), argon2.map(|a| a.per_second())),
                Compare::None => continue,
            };
            if let Some(floor) = floor.filter(|f| *f > 0.0) {
                row.ratio = Some(row.calls_per_sec / floor);
                row.ratio_to = Some(to);
                row.floor_calls_per_sec = Some(floor);
            }
        }
        Self {
            header,
            argon2_floor: argon2.map(|a| Argon2Json {
                m_kib: crate::floor::M_KIB,
                t: crate::floor::T,
                p: crate::floor::P,
                cores: a.cores,
                verify_ms: a.verify.as_secs_f64() * 1000.0,
                logins_per_sec: a.per_second(),
                verify_all_cores_ms: a.verify_all_cores.map(|v| v.as_secs_f64() * 1000.0),
                logins_per_sec_all_cores: a.per_second_all_cores(),
            }),
            rows,
            verify_vs_lookup: None,
        }
    }

    /// Plain text: a few lines of settings, then an aligned table.
    pub fn text(&self) -> String {
        let h = &self.header;
        let load = match h.rate {
            Some(rate) => format!(
                "open loop {rate} calls/s over {} connections",
                h.connections
            ),
            None => format!(
                "closed loop {} connections x {} streams",
                h.connections, h.streams
            ),
        };
        let mut out = format!(
            "authd-load: {} ({}, {}, {}); {} cores; {load}; warm-up {} ms, measured {} ms\n\
             Validate reply: {} bytes (the floor answers a copy of it)\n",
            h.authd_bin,
            h.signing,
            h.transport,
            h.database,
            h.cores,
            h.warmup_ms,
            h.duration_ms,
            h.validate_reply_bytes,
        );
        if let Some(a) = &self.argon2_floor {
            out += &format!(
                "argon2 floor: one verify {:.1} ms (argon2id m={} t={} p={}, one thread, \
                 best batch) -> {} cores / verify = {:.1} logins/s\n",
                a.verify_ms, a.m_kib, a.t, a.p, a.cores, a.logins_per_sec
            );
            if let (Some(ms), Some(per_sec)) = (a.verify_all_cores_ms, a.logins_per_sec_all_cores) {
                let rows: Vec<String> = self
                    .rows
                    .iter()
                    .filter(|r| matches!(r.compare, Compare::Argon2))
                    .map(|r| format!("{} {:.2}", r.scenario, r.calls_per_sec / per_sec))
                    .collect();
                out += &format!(
                    "  with all {} cores verifying at once: {ms:.1} ms each -> {per_sec:.1} \
                     logins/s; against that: {}\n",
                    a.cores,
                    if rows.is_empty() {
                        "-".into()
                    } else {
                        rows.join(", ")
                    }
                );
            }
        }
        if !self.rows.is_empty() {
            out.push('\n');
            out += &self.table();
        }
        if let Some(v) = &self.verify_vs_lookup {
            out.push('\n');
            out += &v.text();
        }
        out
    }

    /// The rows, aligned, and the first unexpected answer of each.
    fn table(&self) -> String {
        let mut out = String::new();
        let head = [
            "scenario",
            "load",
            "calls/s",
            "errors",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "ratio",
            "to",
            "its calls/s",
            "srv us/call",
            "cli us/call",
            "log B/100k",
        ];
        let mut lines = vec![head.map(str::to_owned).to_vec()];
        for r in &self.rows {
            lines.push(vec![
                r.scenario.clone(),
                r.load.clone(),
                format!("{:.1}", r.calls_per_sec),
                r.errors.to_string(),
                format!("{:.3}", r.p50_ms),
                format!("{:.3}", r.p99_ms),
                format!("{:.3}", r.p999_ms),
                r.ratio.map_or("-".into(), |x| format!("{x:.2}")),
                r.ratio_to.clone().unwrap_or_else(|| "-".into()),
                r.floor_calls_per_sec
                    .map_or("-".into(), |x| format!("{x:.1}")),
                r.server_us_per_call
                    .map_or("-".into(), |x| format!("{x:.1}")),
                r.client_us_per_call
                    .map_or("-".into(), |x| format!("{x:.1}")),
                r.log_bytes_per_100k
                    .map_or("-".into(), |x| format!("{x:.0}")),
            ]);
        }
        let widths: Vec<usize> = (0..head.len())
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for line in &lines {
            let cells: Vec<String> = line
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    // Names left-aligned, figures right-aligned.
                    if i < 2 || i == 8 {
                        format!("{cell:<w$}", w = widths[i])
                    } else {
                        format!("{cell:>w$}", w = widths[i])
                    }
                })
                .collect();
            out += cells.join("  ").trim_end();
            out.push('\n');
        }
        let errors: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| {
                r.first_error
                    .as_ref()
                    .map(|e| format!("  {}: first error: {e}", r.scenario))
            })
            .collect();
        if !errors.is_empty() {
            out += "\nunexpected answers:\n";
            out += &errors.join("\n");
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn row(name: &str, per_second: f64, compare: Compare) -> Row {
        Row {
            scenario: name.into(),
            load: "closed 8x16".into(),
            calls_per_sec: per_second,
            errors: 0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            p999_ms: 3.0,
            ratio: None,
            ratio_to: None,
            floor_calls_per_sec: None,
            log_bytes_per_100k: None,
            server_us_per_call: None,
            client_us_per_call: None,
            first_error: None,
            compare,
        }
    }

    fn header() -> Header {
        Header {
            authd_bin: "authd".into(),
            signing: "Ed25519",
            transport: "plain text",
            database: "SQLite",
            cores: 2,
            connections: 8,
            streams: 16,
            rate: None,
            warmup_ms: 1000,
            duration_ms: 5000,
            validate_reply_bytes: 160,
        }
    }

    #[test]
    fn ratios_are_to_the_floors_of_the_same_run() {
        let argon2 = Argon2Floor {
            cores: 2,
            verify: Duration::from_millis(20),
            verify_all_cores: None,
        };
        let paired = |to: &str, calls_per_sec| Compare::Paired {
            to: to.into(),
            calls_per_sec,
        };
        let rows = vec![
            row(FLOOR, 100_000.0, Compare::None),
            row("validate-one", 80_000.0, paired(FLOOR, 100_000.0)),
            row("issue-ok", 90.0, Compare::Argon2),
            row("refresh", 1000.0, Compare::None),
            row(
                "validate-one (tls)",
                60_000.0,
                paired("validate-one", 80_000.0),
            ),
        ];
        let report = Report::finish(header(), Some(argon2), rows);
        let ratio = |i: usize| report.rows[i].ratio.map(|r| (r * 100.0).round() / 100.0);
        assert_eq!(ratio(0), None);
        assert_eq!(ratio(1), Some(0.8));
        assert_eq!(ratio(2), Some(0.9));
        assert_eq!(ratio(3), None);
        assert_eq!(ratio(4), Some(0.75));
        assert_eq!(report.rows[4].ratio_to.as_deref(), Some("validate-one"));
        assert_eq!(report.rows[2].floor_calls_per_sec, Some(100.0));
        let text = report.text();
        assert!(text.contains("2 cores / verify = 100.0 logins/s"), "{text}");
        // Aligned: every table line as wide as the widest cell allows, figures right-aligned.
        let table: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("scenario"))
            .collect();
        assert_eq!(table.len(), 6);
        let col = table[0].find("calls/s").unwrap() + "calls/s".len();
        assert!(
            table[1..]
                .iter()
                .all(|l| l[..col].ends_with(|c: char| c.is_ascii_digit()))
        );
    }
}
