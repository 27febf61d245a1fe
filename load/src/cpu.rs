//! CPU time spent by the server side, from Linux's /proc: on a small machine the load
//! generator may be what limits throughput, and then the server's CPU per call is the
//! figure that still tells a cheap server from a dear one.
use std::time::Duration;

/// /proc reports times in USER_HZ ticks, 100 per second on every Linux ABI.
const TICKS_PER_SECOND: u64 = 100;

/// User + system time of process `pid`, all its threads.
pub fn process(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse(&stat).map(|(_, cpu)| cpu)
}

/// The most resident memory process `pid` has had (`VmHWM`), in bytes: after a login storm,
/// what the argon2 cap let it grow to.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_hwm(&status)
}

fn parse_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `(comm, utime + stime)` of a stat line. The name is in parentheses and may itself hold
/// spaces or parentheses, so fields are counted from the last `)`.
fn parse(stat: &str) -> Option<(&str, Duration)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    // After the name: state (field 3), ..., utime (14), stime (15).
    let mut fields = stat.get(close + 1..)?.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some((name, Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_name() {
        let stat = "4242 (floor (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 4 0";
        assert_eq!(
            parse(stat),
            Some(("floor (x) y", Duration::from_millis(1750)))
        );
    }

    #[test]
    fn peak_rss_is_read_from_vmhwm() {
        let status = "Name:\tauthd\nVmPeak:\t  200 kB\nVmHWM:\t   81234 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_hwm(status), Some(81234 * 1024));
        assert!(peak_rss(std::process::id()).is_some_and(|b| b > 0));
    }

    #[test]
    fn this_process_has_spent_some_cpu() {
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process(std::process::id()).is_some_and(|d| d > Duration::ZERO));
    }
}
