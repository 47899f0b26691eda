//! Host figures the health checks read without a shell or superuser: CPU time from Linux's
//! `/proc/stat`.

/// CPU time of all CPUs since boot, in clock ticks: (busy, total). Busy is everything but idle
/// and iowait; guest time is already counted in user time. None when the text has no `cpu` line
/// of at least four numbers.
pub fn cpu_ticks(proc_stat: &str) -> Option<(u64, u64)> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 4 {
        return None;
    }
    let total = fields.iter().try_fold(0u64, |a, f| a.checked_add(*f))?;
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_aggregate_cpu_line() {
        let text = "cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 50 2 25 400 10 1 1 0 0 0\nintr 1 2\n";
        assert_eq!(cpu_ticks(text), Some((160, 980)));
        assert_eq!(cpu_ticks("cpu  1 2 3 4\n"), Some((6, 10)));
        assert_eq!(cpu_ticks("cpu0 1 2 3 4\n"), None);
        assert_eq!(cpu_ticks("cpu  1 x 3 4\n"), None);
        assert_eq!(cpu_ticks("cpu  1 2\n"), None);
        assert_eq!(cpu_ticks(""), None);
    }
}
