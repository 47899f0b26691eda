//! TLS and basic authentication of the HTTP endpoint, loaded from the server's settings on the
//! worker's thread (at its start and at every reload, `pg_reload_conf()`), handed whole to the
//! connection threads: `pg_storage_ext.http_tls_cert_file` and `http_tls_key_file` (PEM; TLS
//! 1.2 and 1.3 by rustls), `pg_storage_ext.http_auth_file` (the exporter-toolkit's
//! `basic_auth_users`, `pg_storage_core::auth`) and `http_auth_routing` (off: the routing
//! endpoints answer without credentials, as load balancers cannot always send them).

use crate::gucs;
use pg_storage_core::auth::{self, Users};
use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Largest certificate or key file read.
const MAX_PEM: u64 = 1024 * 1024;
/// Credentials remembered as checked (bcrypt is slow on purpose): at most this many.
const MAX_REMEMBERED: usize = 64;
/// Connections waiting for (or in) a bcrypt check at once; past it a request with credentials
/// not remembered is told 503 at once: wrong passwords slow down wrong passwords only, never
/// the threads that routing probes and remembered scrapes need.
const MAX_CHECKING: usize = 4;

/// What a request's credentials get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    Deny,
    /// Too many checks under way: 503, try again.
    Busy,
}

/// What a connection needs to know of TLS and authentication.
pub(crate) struct Security {
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    users: Option<Users>,
    pub(crate) auth_routing: bool,
    /// Credentials that passed, so a scrape every few seconds costs one bcrypt check, not one
    /// per scrape; emptied at every reload (a new Security).
    passed: Mutex<HashSet<(String, String)>>,
    /// One bcrypt check at a time: a flood of wrong passwords costs one core at most.
    checking: Mutex<()>,
    /// Connections waiting for a check or in one.
    waiting: AtomicUsize,
}

impl Security {
    /// Whether a request for `path` with this `Authorization` value may be answered.
    pub(crate) fn allows(&self, path: &str, authorization: Option<&str>) -> Verdict {
        let Some(users) = &self.users else {
            return Verdict::Allow;
        };
        if !self.auth_routing && pg_storage_core::routing::is_routing(path) {
            return Verdict::Allow;
        }
        let Some((user, password)) = authorization.and_then(auth::basic_credentials) else {
            return Verdict::Deny;
        };
        let key = (user, password);
        if lock(&self.passed).contains(&key) {
            return Verdict::Allow;
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_CHECKING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Verdict::Busy;
        }
        let ok = {
            let _one = lock(&self.checking);
            users.verify(&key.0, &key.1)
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if !ok {
            return Verdict::Deny;
        }
        let mut passed = lock(&self.passed);
        if passed.len() >= MAX_REMEMBERED {
            // one goes, not all: the others stay remembered
            if let Some(old) = passed.iter().next().cloned() {
                passed.remove(&old);
            }
        }
        passed.insert(key);
        Verdict::Allow
    }
}

/// A mutex's value, even if a thread panicked holding it (every value kept behind the
/// endpoint's mutexes is replaced whole, never left torn).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A file of at most `max` bytes.
/// A regular file of at most `max` bytes (opened without blocking and checked before it is
/// read: a FIFO or a device would hold the worker's thread).
fn read_file(setting: &str, path: &str, max: u64) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |e: std::io::Error| format!("cannot read {setting} = {path:?}: {e}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(format!("{setting} = {path:?} is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(format!("{setting} = {path:?} is over {} KiB", max / 1024));
    }
    Ok(bytes)
}

/// rustls' ring provider: ring needs a C compiler only (aws-lc-rs, the provider rustls now
/// prefers for its post-quantum key exchange, builds a large C library); classical key exchange
/// is what Prometheus and curl offer a metrics endpoint.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn tls_config(cert_file: &str, key_file: &str) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_pem = read_file("pg_storage_ext.http_tls_cert_file", cert_file, MAX_PEM)?;
    let key_pem = read_file("pg_storage_ext.http_tls_key_file", key_file, MAX_PEM)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("pg_storage_ext.http_tls_cert_file = {cert_file:?}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "pg_storage_ext.http_tls_cert_file = {cert_file:?} holds no certificate"
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("pg_storage_ext.http_tls_key_file = {key_file:?}: {e}"))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!("the certificate {cert_file:?} and the key {key_file:?} do not make a TLS configuration: {e}")
        })
}

/// The endpoint's TLS and authentication as the settings say now; an error (one sentence)
/// when a file cannot be used: the endpoint then keeps what it had, or does not serve at all
/// at its start (never plain text where TLS was asked for, never open where a users file was).
pub(crate) fn load() -> Result<Security, String> {
    let cert = gucs::text(&gucs::HTTP_TLS_CERT_FILE).trim().to_owned();
    let key = gucs::text(&gucs::HTTP_TLS_KEY_FILE).trim().to_owned();
    let users_file = gucs::text(&gucs::HTTP_AUTH_FILE).trim().to_owned();
    let tls = match (cert.is_empty(), key.is_empty()) {
        (true, true) => None,
        (false, false) => Some(Arc::new(tls_config(&cert, &key)?)),
        _ => {
            return Err(
                "set both pg_storage_ext.http_tls_cert_file and http_tls_key_file, or neither"
                    .into(),
            )
        }
    };
    let users = if users_file.is_empty() {
        None
    } else {
        let bytes = read_file(
            "pg_storage_ext.http_auth_file",
            &users_file,
            auth::MAX_FILE as u64,
        )?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("pg_storage_ext.http_auth_file = {users_file:?} is not UTF-8"))?;
        Some(
            Users::parse(&text)
                .map_err(|e| format!("pg_storage_ext.http_auth_file = {users_file:?}: {e}"))?,
        )
    };
    Ok(Security {
        tls,
        users,
        auth_routing: gucs::HTTP_AUTH_ROUTING.get(),
        passed: Mutex::new(HashSet::new()),
        checking: Mutex::new(()),
        waiting: AtomicUsize::new(0),
    })
}

impl Security {
    /// One line for the log: what the endpoint serves with.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}, {}",
            if self.tls.is_some() {
                "TLS"
            } else {
                "plain HTTP"
            },
            match (&self.users, self.auth_routing) {
                (None, _) => "no authentication",
                (Some(_), true) => "basic authentication",
                (Some(_), false) => "basic authentication (not for the routing endpoints)",
            }
        )
    }
}
