//! The metrics endpoint: a background worker, started when `pg_storage_ext.http_listen` is set
//! and the library is in `shared_preload_libraries`, that serves `GET /metrics`
//! (`storage.metrics_prometheus()`) and `GET /` (`storage.health_report_html()`), read-only,
//! connected to `pg_storage_ext.http_database` as `pg_storage_ext.http_role`.
//!
//! Bounded: the worker's own thread only accepts and runs queries; each connection's bytes are
//! read and written by a short-lived thread that touches no PostgreSQL state, with a 5 s limit on
//! the whole request head and on the response write, a head of at most 8 KiB, and at most 64
//! connections at once (the next ones get 503 at once). A slow or silent client holds one such
//! thread, never the worker. Answers are computed one at a time on the worker's thread, each in
//! its own transaction with a statement timeout; an error answers 500 and the worker goes on.

use crate::gucs;
use pg_storage_core::http::{parse_head, response, Head};
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::prelude::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_CONNECTIONS: usize = 64;
const CLIENT_LIMIT: Duration = Duration::from_secs(5);

/// Registers the worker (from `_PG_init`, while shared_preload_libraries is being processed).
pub(crate) fn register() {
    // SAFETY: a flag PostgreSQL sets while it loads shared_preload_libraries
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    if gucs::text(&gucs::HTTP_LISTEN).trim().is_empty() {
        return;
    }
    BackgroundWorkerBuilder::new("pg_storage_ext metrics endpoint")
        .set_type("pg_storage_ext http")
        .set_library("pg_storage_ext")
        .set_function("pg_storage_ext_http_main")
        .enable_spi_access()
        // on a hot standby too, once it is consistent (enable_spi_access waits for the end of
        // recovery, which a standby never reaches)
        .set_start_time(BgWorkerStartTime::ConsistentState)
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
}

/// One request, parsed by a connection thread, answered by the worker.
struct Job {
    path: String,
    head_only: bool,
    reply: mpsc::Sender<Vec<u8>>,
}

fn write_all(mut s: &TcpStream, bytes: &[u8]) {
    let _ = s.set_write_timeout(Some(CLIENT_LIMIT));
    let _ = s.write_all(bytes);
    let _ = s.flush();
}

/// Reads the request head within the limits, hands it to the worker, writes the answer.
fn serve(stream: TcpStream, jobs: mpsc::Sender<Job>) {
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head = loop {
        let left = CLIENT_LIMIT.saturating_sub(started.elapsed());
        if left.is_zero() {
            break Head::Bad(408);
        }
        let _ = stream.set_read_timeout(Some(left));
        match (&stream).read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                match parse_head(&buf) {
                    Head::Incomplete => continue,
                    h => break h,
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break Head::Bad(408)
            }
            Err(_) => return,
        }
    };
    let answer = match head {
        Head::Request { method, path } if method == "GET" || method == "HEAD" => {
            let (tx, rx) = mpsc::channel();
            let job = Job {
                path,
                head_only: method == "HEAD",
                reply: tx,
            };
            if jobs.send(job).is_err() {
                return;
            }
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(a) => a,
                Err(_) => response(503, "text/plain", b"busy\n", false),
            }
        }
        Head::Request { .. } => response(405, "text/plain", b"only GET and HEAD\n", false),
        Head::Bad(status) => response(status, "text/plain", b"bad request\n", false),
        Head::Incomplete => return,
    };
    write_all(&stream, &answer);
}

/// Runs `f` with every signal blocked, so a thread it starts inherits a mask that keeps
/// PostgreSQL's signal handlers on the worker's own thread.
fn without_signals<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: sigset_t is plain data; pthread_sigmask only changes this thread's mask, restored
    // right after
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let r = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

/// Runs one query returning text in its own transaction; an error is caught, rolled back and
/// returned as its message (the worker goes on).
fn query_text(sql: &'static str) -> Result<String, String> {
    BackgroundWorker::transaction(|| {
        // SAFETY: the subtransaction dance of PL/pgSQL's exception blocks: begin, run, release on
        // success; on error restore the memory context and resource owner, then roll back
        unsafe {
            let cxt = pg_sys::CurrentMemoryContext;
            let owner = pg_sys::CurrentResourceOwner;
            pg_sys::BeginInternalSubTransaction(std::ptr::null());
            let result = PgTryBuilder::new(|| {
                let v = crate::error::read_one::<String>(sql)
                    .map_err(|e| e.to_string())
                    .and_then(|v| v.ok_or_else(|| "no answer".to_owned()));
                pg_sys::ReleaseCurrentSubTransaction();
                pg_sys::MemoryContextSwitchTo(cxt);
                pg_sys::CurrentResourceOwner = owner;
                v
            })
            .catch_others(|e| {
                pg_sys::MemoryContextSwitchTo(cxt);
                pg_sys::RollbackAndReleaseCurrentSubTransaction();
                pg_sys::MemoryContextSwitchTo(cxt);
                pg_sys::CurrentResourceOwner = owner;
                Err(match e {
                    pg_sys::panic::CaughtError::PostgresError(r)
                    | pg_sys::panic::CaughtError::ErrorReport(r) => r.message().to_owned(),
                    _ => "internal error".to_owned(),
                })
            })
            .execute();
            result
        }
    })
}

fn answer(job: &Job) -> Vec<u8> {
    let (sql, content_type) = match job.path.as_str() {
        "/metrics" => (
            "SELECT storage.metrics_prometheus()",
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/" => (
            "SELECT storage.health_report_html()",
            "text/html; charset=utf-8",
        ),
        _ => {
            return response(
                404,
                "text/plain",
                b"not found: try /metrics or /\n",
                job.head_only,
            )
        }
    };
    match query_text(sql) {
        Ok(body) => response(200, content_type, body.as_bytes(), job.head_only),
        Err(msg) => {
            pgrx::log!("pg_storage_ext http: {} failed: {msg}", job.path);
            response(
                500,
                "text/plain",
                b"the query failed; see the server log\n",
                job.head_only,
            )
        }
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_http_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let listen = gucs::text(&gucs::HTTP_LISTEN).trim().to_owned();
    let db = gucs::text(&gucs::HTTP_DATABASE);
    let role = gucs::text(&gucs::HTTP_ROLE);
    BackgroundWorker::connect_worker_to_spi(Some(&db), Some(&role));
    let superuser = BackgroundWorker::transaction(|| {
        crate::error::read_one::<bool>(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
        )
    });
    if !matches!(superuser, Ok(Some(false))) {
        pgrx::warning!(
            "pg_storage_ext http: not serving: the role {role:?} is a superuser (or unknown); set pg_storage_ext.http_role to a role with pg_monitor"
        );
        return;
    }
    // settings through a read-only query: pgrx's writing SPI calls take a transaction id, which a
    // hot standby has none of
    let _ = BackgroundWorker::transaction(|| {
        crate::error::read_one::<String>(
            "SELECT pg_catalog.set_config('statement_timeout', '10s', false) \
                 || pg_catalog.set_config('lock_timeout', '1s', false) \
                 || pg_catalog.set_config('application_name', 'pg_storage_ext http', false)",
        )
    });
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            pgrx::warning!("pg_storage_ext http: cannot listen on {listen:?}: {e}");
            return;
        }
    };
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    pgrx::log!("pg_storage_ext http: serving /metrics and / on {listen} ({db} as {role})");
    let open = Arc::new(AtomicUsize::new(0));
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(20))) {
        // new connections: each to its own thread, or 503 past the limit
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                        let busy = response(503, "text/plain", b"too many connections\n", false);
                        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
                        let _ = (&stream).write_all(&busy);
                        continue;
                    }
                    open.fetch_add(1, Ordering::SeqCst);
                    let (mine, jobs) = (Arc::clone(&open), jobs_tx.clone());
                    let spawned = without_signals(move || {
                        std::thread::Builder::new()
                            .name("pgse-http".into())
                            .stack_size(256 * 1024)
                            .spawn(move || {
                                serve(stream, jobs);
                                mine.fetch_sub(1, Ordering::SeqCst);
                            })
                    });
                    if spawned.is_err() {
                        open.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        // requests read so far: answered here, on the worker's thread
        while let Ok(job) = jobs_rx.try_recv() {
            let a = answer(&job);
            let _ = job.reply.send(a);
        }
    }
}
