//! Health checks and metrics. The checks, the metrics collector, snapshots and the Prometheus
//! text are SQL in `sql/health.sql`; this holds what SQL cannot read without superuser (the
//! host's CPU time and the data directory's file system) and the exposition's label sets
//! (`pg_storage_core::prometheus`).

pub(crate) mod custom;
pub(crate) mod http;
pub(crate) mod secure;

use pg_storage_core::{host, prometheus};
use pgrx::prelude::*;
use std::io::Read;

/// CPU time of the host since boot in seconds, (busy, total); no row where `/proc/stat` is not
/// readable (not Linux).
#[pg_extern(volatile, parallel_safe)]
pub(crate) fn _host_cpu(
) -> TableIterator<'static, (name!(busy_seconds, f64), name!(total_seconds, f64))> {
    let mut text = String::new();
    let read = std::fs::File::open("/proc/stat")
        .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
        .is_ok();
    // SAFETY: sysconf has no preconditions
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let rows = match (read, host::cpu_ticks(&text)) {
        (true, Some((busy, total))) if hz > 0 => {
            vec![(busy as f64 / hz as f64, total as f64 / hz as f64)]
        }
        _ => Vec::new(),
    };
    TableIterator::new(rows)
}

/// Size and free space (available to the server) of the file system holding the data
/// directory, in bytes; no row when it cannot be read.
#[pg_extern(volatile, parallel_safe)]
pub(crate) fn _data_disk(
) -> TableIterator<'static, (name!(total_bytes, i64), name!(free_bytes, i64))> {
    // SAFETY: DataDir is set at postmaster start and never freed; statvfs writes into st only
    let rows = unsafe {
        if pg_sys::DataDir.is_null() {
            Vec::new()
        } else {
            let mut st: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(pg_sys::DataDir, &mut st) == 0 {
                let frsize = st.f_frsize as i64;
                vec![(
                    (st.f_blocks as i64).saturating_mul(frsize),
                    (st.f_bavail as i64).saturating_mul(frsize),
                )]
            } else {
                Vec::new()
            }
        }
    };
    TableIterator::new(rows)
}

/// The Prometheus label set `{k="v",…}` of label names and their values (pairs with a NULL or
/// invalid name left out, NULL values empty), escaped; empty for no labels.
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn _prometheus_labels(
    names: Option<Vec<Option<String>>>,
    values: Option<Vec<Option<String>>>,
) -> String {
    let (names, values) = (names.unwrap_or_default(), values.unwrap_or_default());
    prometheus::label_set(
        names
            .iter()
            .zip(values.iter())
            .filter_map(|(k, v)| Some((k.as_deref()?, v.as_deref().unwrap_or("")))),
    )
}

/// A sample value as the exposition writes it (`NaN`, `+Inf`, `-Inf`, or the number).
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _prometheus_value(v: f64) -> String {
    prometheus::format_value(v)
}

/// Text escaped for HTML.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _html_escape(s: &str) -> String {
    pg_storage_core::report::escape_html(s)
}

/// A line chart as inline SVG of the points (`xs`: seconds since the epoch, in order; `ys`:
/// values, NULL or not finite left out), at most 10,000 points.
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn _svg_chart(
    title: Option<&str>,
    unit: Option<&str>,
    xs: Option<Vec<Option<f64>>>,
    ys: Option<Vec<Option<f64>>>,
) -> String {
    let points: Vec<(f64, f64)> = xs
        .unwrap_or_default()
        .into_iter()
        .zip(ys.unwrap_or_default())
        .filter_map(|(x, y)| Some((x?, y?)))
        .take(10_000)
        .collect();
    pg_storage_core::report::svg_line_chart(
        title.unwrap_or(""),
        unit.unwrap_or(""),
        &points,
        460,
        170,
    )
}
