//! The routing endpoints of the metrics endpoint, the shape of Patroni's REST API that load
//! balancers and probes are written against: `/primary`, `/replica`, `/read-only` (with
//! `?lag=`), `/health`, `/liveness`, `/readiness`. Each is answered from the server's state
//! (read by the endpoint's worker, `storage._routing_state()`) by status alone; the body is a
//! short JSON object saying why.

use serde_json::json;

/// The paths answered here.
pub const PATHS: [&str; 6] = [
    "/primary",
    "/replica",
    "/read-only",
    "/health",
    "/liveness",
    "/readiness",
];

/// Whether a path is a routing endpoint.
pub fn is_routing(path: &str) -> bool {
    PATHS.contains(&path)
}

/// The server's state as the worker last read it.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// In recovery (a standby).
    pub standby: bool,
    /// The postmaster takes new connections (its status in postmaster.pid is `ready` or
    /// `standby`, not `stopping` or `starting`).
    pub accepting: bool,
    /// A standby whose WAL receiver is streaming.
    pub receiving: bool,
    /// `storage.replication_status()`'s state on a standby, `primary` on a primary.
    pub replication: String,
    /// Bytes received and not replayed (0 on a primary); None when not known.
    pub byte_lag: Option<f64>,
    /// Replay lag in seconds from the replayed heartbeat (0 on a primary); None when not known.
    pub lag_seconds: Option<f64>,
    /// Client connections open, and the slots ordinary roles may use.
    pub clients: i64,
    pub client_slots: i64,
}

/// Whether the postmaster takes new connections, from the text of postmaster.pid: its status
/// line (the 8th: `starting`, `stopping`, `ready` or `standby`); a file without one says nothing
/// against it.
pub fn accepting(pidfile: &str) -> bool {
    !matches!(
        pidfile.lines().nth(7).map(str::trim),
        Some("starting" | "stopping")
    )
}

/// The most lag a client accepts: bytes of WAL or seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lag {
    Bytes(f64),
    Seconds(f64),
}

/// Reads a lag as PostgreSQL writes sizes and durations: a number of bytes (`16777216`), with a
/// size unit (`B`, `kB`, `MB`, `GB`, `TB`, 1024-based) or a time unit (`us`, `ms`, `s`, `min`,
/// `h`, `d`); not negative, at most 2^53 bytes or 100 years.
pub fn parse_lag(text: &str) -> Result<Lag, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let valid = !number.is_empty()
        && number.bytes().filter(|&b| b == b'.').count() <= 1
        && number.bytes().any(|b| b.is_ascii_digit())
        && number.len() <= 20;
    let n: f64 = match number.parse() {
        Ok(n) if valid => n,
        _ => {
            return Err(format!(
                "lag {:?} is not a number with an optional unit (e.g. 10MB, 16777216, 30s, 500ms)",
                echo(text)
            ))
        }
    };
    let (lag, max) = match unit {
        "" | "B" => (Lag::Bytes(n), 2f64.powi(53)),
        "kB" => (Lag::Bytes(n * 1024.0), 2f64.powi(53)),
        "MB" => (Lag::Bytes(n * 1024.0 * 1024.0), 2f64.powi(53)),
        "GB" => (Lag::Bytes(n * 1024f64.powi(3)), 2f64.powi(53)),
        "TB" => (Lag::Bytes(n * 1024f64.powi(4)), 2f64.powi(53)),
        "us" => (Lag::Seconds(n / 1e6), 3.2e9),
        "ms" => (Lag::Seconds(n / 1e3), 3.2e9),
        "s" => (Lag::Seconds(n), 3.2e9),
        "min" => (Lag::Seconds(n * 60.0), 3.2e9),
        "h" => (Lag::Seconds(n * 3600.0), 3.2e9),
        "d" => (Lag::Seconds(n * 86400.0), 3.2e9),
        _ => {
            return Err(format!(
                "lag {:?}: unknown unit {:?} (B, kB, MB, GB, TB, us, ms, s, min, h, d)",
                echo(text),
                echo(unit)
            ))
        }
    };
    match lag {
        Lag::Bytes(v) | Lag::Seconds(v) if v.is_finite() && v <= max => Ok(lag),
        _ => Err(format!("lag {:?} is too large", echo(text))),
    }
}

/// At most this much of a client's text is echoed in an error.
const ECHO: usize = 64;

fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// The `lag` parameter of a query string (`lag=10MB`). Any other parameter (a typo such as
/// `LAG=` or `lag%3D` would otherwise drop the limit unseen), `lag` given twice, empty or not a
/// lag: an error.
pub fn lag_param(query: &str) -> Result<Option<Lag>, String> {
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "lag" {
            return Err(format!(
                "unknown parameter {:?}: the routing endpoints take lag only",
                echo(key)
            ));
        }
        if found.is_some() {
            return Err("lag is given twice".into());
        }
        found = Some(parse_lag(value)?);
    }
    Ok(found)
}

/// Whether the lag is within the limit (an unknown lag never is).
fn within(state: &State, limit: Option<Lag>) -> Result<(), String> {
    match limit {
        None => Ok(()),
        Some(Lag::Bytes(max)) => match state.byte_lag {
            Some(b) if b <= max => Ok(()),
            Some(b) => Err(format!("{b} bytes not replayed, more than {max}")),
            None => Err("the bytes not replayed are not known".into()),
        },
        Some(Lag::Seconds(max)) => match state.lag_seconds {
            Some(s) if s <= max => Ok(()),
            Some(s) => Err(format!("replay lag {s:.3} s, more than {max} s")),
            None => Err("the replay lag is not known (no heartbeat replayed?)".into()),
        },
    }
}

/// The status and body of a routing endpoint: `state` None when the database does not answer.
/// A path that is not one of [`PATHS`] is 404.
pub fn answer(path: &str, query: &str, state: Option<&State>) -> (u16, String) {
    let limit = match lag_param(query) {
        Ok(l) => l,
        Err(why) => return (400, json!({ "error": why }).to_string() + "\n"),
    };
    let Some(s) = state else {
        return (
            503,
            json!({ "error": "the database does not answer" }).to_string() + "\n",
        );
    };
    let verdict: Result<(), String> = match path {
        "/health" | "/liveness" => Ok(()),
        _ if !s.accepting && is_routing(path) => {
            Err("the server takes no new connections (shutting down or starting)".into())
        }
        "/readiness" => {
            if s.clients < s.client_slots {
                Ok(())
            } else {
                Err(format!(
                    "at the connection limit: {} of {} connections",
                    s.clients, s.client_slots
                ))
            }
        }
        "/primary" => {
            if s.standby {
                Err("a standby".into())
            } else {
                Ok(())
            }
        }
        "/replica" | "/read-only" => {
            if !s.standby {
                if path == "/read-only" {
                    Ok(())
                } else {
                    Err("a primary".into())
                }
            } else if !s.receiving {
                Err(format!("a standby not streaming ({})", s.replication))
            } else {
                within(s, limit)
            }
        }
        _ => return (404, json!({ "error": "not found" }).to_string() + "\n"),
    };
    let mut body = json!({
        "role": if s.standby { "standby" } else { "primary" },
        "replication": s.replication,
        "byte_lag": s.byte_lag,
        "lag_seconds": s.lag_seconds,
        "connections": s.clients,
        "connection_slots": s.client_slots,
    });
    let status = match verdict {
        Ok(()) => 200,
        Err(why) => {
            body["why"] = why.into();
            503
        }
    };
    (status, body.to_string() + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary() -> State {
        State {
            standby: false,
            accepting: true,
            receiving: false,
            replication: "primary".into(),
            byte_lag: Some(0.0),
            lag_seconds: Some(0.0),
            clients: 3,
            client_slots: 97,
        }
    }

    fn standby(byte_lag: f64, lag_seconds: f64) -> State {
        State {
            standby: true,
            accepting: true,
            receiving: true,
            replication: "streaming".into(),
            byte_lag: Some(byte_lag),
            lag_seconds: Some(lag_seconds),
            clients: 3,
            client_slots: 97,
        }
    }

    #[test]
    fn lags() {
        assert_eq!(parse_lag("10MB"), Ok(Lag::Bytes(10.0 * 1048576.0)));
        assert_eq!(parse_lag("16777216"), Ok(Lag::Bytes(16777216.0)));
        assert_eq!(parse_lag("1.5kB"), Ok(Lag::Bytes(1536.0)));
        assert_eq!(parse_lag("30s"), Ok(Lag::Seconds(30.0)));
        assert_eq!(parse_lag("500ms"), Ok(Lag::Seconds(0.5)));
        assert_eq!(parse_lag("2min"), Ok(Lag::Seconds(120.0)));
        assert_eq!(parse_lag("0"), Ok(Lag::Bytes(0.0)));
        for bad in [
            "",
            "MB",
            "-1",
            "1e9",
            "1..2",
            ".",
            "10 MB",
            "10mb",
            "NaN",
            "inf",
            "1x",
            "99999999TB",
        ] {
            assert!(parse_lag(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_lag(&"9".repeat(400)).is_err());
        assert_eq!(lag_param(""), Ok(None));
        assert_eq!(lag_param("lag=1s&"), Ok(Some(Lag::Seconds(1.0))));
        assert!(lag_param("lag=1s&lag=2s").is_err());
        assert!(lag_param("lag").is_err());
        assert!(lag_param("lag=%31s").is_err());
        assert!(lag_param("LAG=1MB").is_err());
        assert!(lag_param("lag%3D1MB").is_err());
        assert!(lag_param("x=1").is_err());
        let long = format!("lag={}", "9".repeat(8000));
        assert!(lag_param(&long).unwrap_err().len() < 200);
    }

    #[test]
    fn verdicts() {
        let p = primary();
        let code = |path: &str, q: &str, s: Option<&State>| answer(path, q, s).0;
        assert_eq!(code("/primary", "", Some(&p)), 200);
        assert_eq!(code("/replica", "", Some(&p)), 503);
        assert_eq!(code("/read-only", "lag=0", Some(&p)), 200);
        assert_eq!(code("/health", "", Some(&p)), 200);
        assert_eq!(code("/readiness", "", Some(&p)), 200);
        let stopping = State {
            accepting: false,
            ..primary()
        };
        for (path, want) in [
            ("/primary", 503),
            ("/read-only", 503),
            ("/readiness", 503),
            ("/health", 200),
            ("/liveness", 200),
        ] {
            assert_eq!(code(path, "", Some(&stopping)), want, "{path}");
        }
        assert!(accepting("1\n/data\n1\n5432\n/tmp\n*\n  1 2\nready   \n"));
        assert!(!accepting("1\n/data\n1\n5432\n/tmp\n*\n  1 2\nstopping\n"));
        assert!(accepting("1\n/data\n"));
        let full = State {
            clients: 97,
            ..primary()
        };
        assert_eq!(code("/readiness", "", Some(&full)), 503);
        assert_eq!(code("/liveness", "", Some(&full)), 200);
        let s = standby(20.0 * 1048576.0, 3.0);
        assert_eq!(code("/primary", "", Some(&s)), 503);
        assert_eq!(code("/replica", "", Some(&s)), 200);
        assert_eq!(code("/replica", "lag=10MB", Some(&s)), 503);
        assert_eq!(code("/replica", "lag=30MB", Some(&s)), 200);
        assert_eq!(code("/replica", "lag=2s", Some(&s)), 503);
        assert_eq!(code("/read-only", "lag=5s", Some(&s)), 200);
        assert_eq!(code("/replica", "lag=bad", Some(&s)), 400);
        let gone = State {
            receiving: false,
            replication: "disconnected".into(),
            ..standby(0.0, 0.0)
        };
        assert_eq!(code("/replica", "", Some(&gone)), 503);
        assert_eq!(code("/read-only", "", Some(&gone)), 503);
        let unknown = State {
            lag_seconds: None,
            ..standby(0.0, 0.0)
        };
        assert_eq!(code("/replica", "lag=1h", Some(&unknown)), 503);
        assert_eq!(code("/replica", "lag=1MB", Some(&unknown)), 200);
        for path in PATHS {
            assert_eq!(code(path, "", None), 503);
        }
        assert_eq!(code("/nope", "", Some(&p)), 404);
        let (_, body) = answer("/replica", "lag=10MB", Some(&s));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["role"], "standby");
        assert!(v["why"].as_str().unwrap().contains("bytes not replayed"));
    }
}
