//! The metrics endpoint: served when `pg_storage_ext.http_listen` is set and the library is in
//! `shared_preload_libraries`: `GET /metrics` (`storage.metrics_prometheus()`) and `GET /`
//! (`storage.health_report_html()`), and the routing endpoints of load balancers (`/primary`,
//! `/replica?lag=`, ..., `pg_storage_core::routing`, from `storage._routing_state()`), read-only,
//! connected to `pg_storage_ext.http_database` as `pg_storage_ext.http_role`.
//!
//! Two background workers. The supervisor (registered at server start, restarted by the
//! postmaster 10 s after any exit but a shutdown) connects to no database: it checks the
//! configuration from the shared catalogs (the database exists and allows connections, the role
//! exists and is not a superuser, the address can be listened on), logs one clear line when it
//! is wrong and checks again after 10 s, 20 s, ... up to every 10 minutes (`pg_reload_conf()`
//! checks at once), and starts the server worker when it is right. The server worker (dynamic,
//! connected as the role) answers; whenever it stops (`pg_terminate_backend`, an error, a
//! panic: each logs why) the supervisor starts it again after 1 s, doubling up to 10 minutes
//! while it keeps stopping within a minute.
//!
//! Bounded: the server's own thread only runs queries; a thread of its own accepts connections,
//! and each connection's bytes are read and written by a short-lived thread that touches no
//! PostgreSQL state, with a 5 s limit on the whole request head and on the response write, a
//! head of at most 8 KiB, and at most 64 connections at once: when they are all taken, the
//! oldest one still reading its head after 100 ms is answered 503 and closed for the new one
//! (else the oldest still writing its answer is closed), so slow clients cannot starve a
//! scrape; only when all 64 wait for an answer (or are younger) does the new one get 503.
//! Answers are computed one at a time on the worker's thread, each in its own transaction with
//! a statement timeout, and kept for a short time (`/metrics` 1 s, `/` 10 s): a flood costs the
//! database one query per period. An error answers 500 and the worker goes on.

use super::secure::{self, lock, Security, Verdict};
use crate::gucs;
use pg_storage_core::http::{parse_head, response, worth_parsing, Head, Method};
use pg_storage_core::routing;
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    DynamicBackgroundWorker, SignalWakeFlags,
};
use pgrx::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_CONNECTIONS: usize = 64;
/// Connection threads alive at once, closed ones still finishing included.
const MAX_THREADS: usize = 2 * MAX_CONNECTIONS;
const CLIENT_LIMIT: Duration = Duration::from_secs(5);
/// First wait before checking a wrong configuration again; it doubles up to LAST_RETRY.
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// First wait before starting a stopped server worker again; it doubles up to LAST_RETRY while
/// the worker keeps stopping within STEADY of its start.
const FIRST_RESTART: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(600);
const STEADY: Duration = Duration::from_secs(60);
/// The postmaster's wait before starting the supervisor again.
const SUPERVISOR_RESTART: Duration = Duration::from_secs(10);

/// Registers the supervisor (from `_PG_init`, while shared_preload_libraries is being processed).
pub(crate) fn register() {
    // SAFETY: a flag PostgreSQL sets while it loads shared_preload_libraries
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    if gucs::text(&gucs::HTTP_LISTEN).trim().is_empty() {
        return;
    }
    BackgroundWorkerBuilder::new("pg_storage_ext metrics endpoint supervisor")
        .set_type("pg_storage_ext http supervisor")
        .set_library("pg_storage_ext")
        .set_function("pg_storage_ext_http_supervisor")
        // a connection to no database: the shared catalogs only
        .enable_spi_access()
        // on a hot standby too, once it is consistent (enable_spi_access waits for the end of
        // recovery, which a standby never reaches)
        .set_start_time(BgWorkerStartTime::ConsistentState)
        .set_restart_time(Some(SUPERVISOR_RESTART))
        .load();
}

/// `base` doubled `n` times, at most LAST_RETRY.
fn backoff(base: Duration, n: u32) -> Duration {
    base.saturating_mul(1u32 << n.min(16)).min(LAST_RETRY)
}

/// Exits the supervisor (stopping its server worker) with a status the postmaster restarts.
fn supervisor_exit(server: Option<DynamicBackgroundWorker>, why: &str) -> ! {
    if let Some(w) = server {
        w.terminate();
    }
    pgrx::log!(
        "pg_storage_ext http: supervisor stopping: {why}; unless the server is shutting down, the postmaster starts it again in {} s",
        SUPERVISOR_RESTART.as_secs()
    );
    // SAFETY: PostgreSQL's own exit, which runs the process's exit callbacks; 1 makes the
    // postmaster restart the worker after its restart time
    unsafe { pg_sys::proc_exit(1) };
    unreachable!("proc_exit returned")
}

/// Waits `d` on the latch; true when `pg_reload_conf()` cut it short. Exits on SIGTERM.
fn pause(d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        if !BackgroundWorker::wait_latch(Some(left)) {
            supervisor_exit(
                None,
                "SIGTERM (pg_terminate_backend, or the server shutting down)",
            );
        }
        if BackgroundWorker::sighup_received() {
            return true;
        }
    }
}

/// The configuration as the server worker needs it: the database's and the role's oids, or
/// what is wrong with it (one sentence, with what to do).
fn check_configuration(
    listen: &str,
    db: &str,
    role: &str,
) -> Result<(pg_sys::Oid, pg_sys::Oid), String> {
    // the address first: no catalog needed
    match TcpListener::bind(listen) {
        Ok(l) => drop(l),
        Err(e) => {
            return Err(format!(
                "cannot listen on pg_storage_ext.http_listen = {listen:?}: {e} (it takes host:port, e.g. 127.0.0.1:9187)"
            ))
        }
    }
    let Ok(role_c) = CString::new(role) else {
        return Err("pg_storage_ext.http_role holds a NUL byte".into());
    };
    let (dboid, allowconn, roleoid, superuser) = BackgroundWorker::transaction(|| {
        // SAFETY: in a transaction of a worker connected to the shared catalogs only, so only
        // what needs no relation of a database: a plain scan of pg_database (its indexes are
        // not loaded in such a process: get_database_oid would fail) and the role syscache
        // (which scans without index there); each scan ends before the transaction
        unsafe {
            let (mut dboid, mut allowconn) = (pg_sys::InvalidOid, false);
            let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
            let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, lock);
            let scan = pg_sys::systable_beginscan(
                rel,
                pg_sys::InvalidOid,
                false,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            );
            loop {
                let tup = pg_sys::systable_getnext(scan);
                if tup.is_null() {
                    break;
                }
                let form = pg_sys::GETSTRUCT(tup) as *const pg_sys::FormData_pg_database;
                let name = std::ffi::CStr::from_ptr((*form).datname.data.as_ptr());
                if name.to_bytes() == db.as_bytes() {
                    (dboid, allowconn) = ((*form).oid, (*form).datallowconn);
                    break;
                }
            }
            pg_sys::systable_endscan(scan);
            pg_sys::table_close(rel, lock);
            let roleoid = pg_sys::get_role_oid(role_c.as_ptr(), true);
            let superuser = roleoid != pg_sys::InvalidOid && pg_sys::superuser_arg(roleoid);
            (dboid, allowconn, roleoid, superuser)
        }
    });
    if dboid == pg_sys::InvalidOid {
        return Err(format!(
            "database {db:?} (pg_storage_ext.http_database) does not exist"
        ));
    }
    if !allowconn {
        return Err(format!(
            "database {db:?} (pg_storage_ext.http_database) does not allow connections"
        ));
    }
    if roleoid == pg_sys::InvalidOid {
        return Err(format!(
            "role {role:?} (pg_storage_ext.http_role) does not exist: create it with CREATE ROLE {} IN ROLE pg_monitor",
            crate::ident::quote(role)
        ));
    }
    if superuser {
        return Err(format!(
            "role {role:?} (pg_storage_ext.http_role) is a superuser: the endpoint runs as a role with pg_monitor only"
        ));
    }
    Ok((dboid, roleoid))
}

/// Starts the server worker, connected to `db` as `role`, reporting to this process.
fn start_server(db: pg_sys::Oid, role: pg_sys::Oid) -> Option<DynamicBackgroundWorker> {
    // SAFETY: this backend's pid
    let me = unsafe { pg_sys::MyProcPid };
    crate::worker::start(
        "pg_storage_ext metrics endpoint",
        "pg_storage_ext http",
        "pg_storage_ext_http_main",
        pg_sys::Datum::from(0),
        &format!("{} {} {me}", u32::from(db), u32::from(role)),
        // on a hot standby too, once it is consistent
        BgWorkerStartTime::ConsistentState,
    )
}

/// Waits until the server worker stopped. Exits (stopping it) on SIGTERM.
fn supervise(server: DynamicBackgroundWorker) {
    loop {
        if !BackgroundWorker::wait_latch(Some(Duration::from_secs(1))) {
            supervisor_exit(
                Some(server),
                "SIGTERM (pg_terminate_backend, or the server shutting down)",
            );
        }
        // settings of the endpoint change only with a restart: a reload while serving is moot
        let _ = BackgroundWorker::sighup_received();
        match server.pid() {
            Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted) => {}
            Err(_) => return,
        }
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_http_supervisor(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(None, None);
    let listen = gucs::text(&gucs::HTTP_LISTEN).trim().to_owned();
    let db = gucs::text(&gucs::HTTP_DATABASE);
    let role = gucs::text(&gucs::HTTP_ROLE);
    let (mut config_failures, mut quick_exits) = (0u32, 0u32);
    let mut last_problem = String::new();
    loop {
        let problem = match check_configuration(&listen, &db, &role) {
            Err(p) => p,
            Ok((dboid, roleoid)) => match start_server(dboid, roleoid) {
                None => "no background worker slot is free (raise max_worker_processes)".into(),
                Some(server) => {
                    config_failures = 0;
                    last_problem.clear();
                    let started = Instant::now();
                    supervise(server);
                    let ran = started.elapsed();
                    if ran >= STEADY {
                        quick_exits = 0;
                    }
                    let delay = backoff(FIRST_RESTART, quick_exits);
                    quick_exits += 1;
                    pgrx::log!(
                        "pg_storage_ext http: the endpoint's worker stopped after {} s (why is logged above); starting it again in {} s",
                        ran.as_secs(),
                        delay.as_secs()
                    );
                    if pause(delay) {
                        quick_exits = 0;
                    }
                    continue;
                }
            },
        };
        let delay = backoff(FIRST_RETRY, config_failures);
        config_failures += 1;
        if problem != last_problem {
            pgrx::warning!(
                "pg_storage_ext http: not serving: {problem}; checking again in {} s, then less and less often (every 10 min at most), or at once on SELECT pg_reload_conf()",
                delay.as_secs()
            );
        } else {
            pgrx::debug1!(
                "pg_storage_ext http: still not serving: {problem}; checking again in {} s",
                delay.as_secs()
            );
        }
        last_problem = problem;
        if pause(delay) {
            config_failures = 0;
            quick_exits = 0;
        }
    }
}

/// One request, parsed by a connection thread, answered by the worker.
struct Job {
    path: String,
    query: String,
    method: Method,
    reply: mpsc::Sender<Vec<u8>>,
}

/// The server's state as the worker last read it for the routing endpoints: when, and what (an
/// error when the database did not answer).
type LastState = Option<(Instant, Result<routing::State, String>)>;

/// What a connection thread shares with the worker: the queue of requests, and the last state
/// read, from which it answers a routing endpoint itself when the worker is busy.
#[derive(Clone)]
struct Ends {
    jobs: mpsc::Sender<Job>,
    last: Arc<Mutex<LastState>>,
    /// TLS and authentication, replaced whole at a reload; each connection takes the one of
    /// its start.
    security: Arc<Mutex<Arc<Security>>>,
}

/// How long a connection thread waits for the worker to answer a routing endpoint from a fresh
/// state before answering from the last state read.
const ROUTING_WAIT: Duration = Duration::from_millis(40);
/// The worker reads the state again when the last one is older than this (a flood of probes
/// costs the database at most 20 small queries a second).
const ROUTING_FRESH: Duration = Duration::from_millis(50);
/// A state older than this (the worker stuck longer than a statement timeout) is no state: the
/// routing endpoints answer 503.
const ROUTING_STALE: Duration = Duration::from_secs(15);

/// Reads the state (on the worker's thread) and keeps it as the last one.
fn refresh_routing_state(last: &Mutex<LastState>) {
    let state = routing_state();
    if let Err(msg) = &state {
        pgrx::log!("pg_storage_ext http: reading the routing state failed: {msg}");
    }
    *lock(last) = Some((Instant::now(), state));
}

/// A routing endpoint's answer from the last state read, as the worker would give it.
fn routing_answer(path: &str, query: &str, method: Method, last: &LastState) -> Vec<u8> {
    let state = match last {
        Some((at, Ok(s))) if at.elapsed() < ROUTING_STALE => Some(s),
        _ => None,
    };
    let (status, body) = routing::answer(path, query, state);
    response(status, "application/json", body.as_bytes(), method)
}

// Phases of a connection: its thread reads the head, waits for the worker's answer, writes it;
// the acceptor may evict a connection reading its head (then only the acceptor writes to it).
const READING: u8 = 0;
const WAITING: u8 = 1;
const WRITING: u8 = 2;
const DONE: u8 = 3;
const EVICTED: u8 = 4;
/// A connection younger than this may still have its head in flight: it is evicted after the
/// older ones that have sent little.
const HEAD_IN_FLIGHT: Duration = Duration::from_millis(10);
/// A head this long (or longer) is a real request arriving, not a client trickling bytes.
const REAL_HEAD: usize = 16;

/// What the acceptor knows of a connection its thread serves.
struct ConnState {
    phase: AtomicU8,
    opened: Instant,
    /// Bytes of its head its thread has read so far.
    received: AtomicUsize,
}

impl ConnState {
    /// Moves from `from` to `to`; false when the connection is no longer in `from` (evicted).
    fn pass(&self, from: u8, to: u8) -> bool {
        self.phase
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// The client's socket as its connection reads it: every socket read given only the time left
/// until the head's deadline (so neither a TLS handshake nor a record sent a byte at a time
/// outlasts it: rustls reads the socket many times within one read of ours) and counted (the
/// bytes the client sent, a TLS handshake's included: how far it is with its request, which the
/// acceptor weighs when it must close one).
struct Sock {
    stream: TcpStream,
    deadline: Instant,
    state: Arc<ConnState>,
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let n = self.stream.read(buf)?;
        self.state.received.fetch_add(n, Ordering::SeqCst);
        Ok(n)
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// A client's connection: plain, or TLS over it.
enum Conn {
    Plain(Sock),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, Sock>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// Writes the whole answer within the time limit (and TLS's close_notify after it).
fn write_all(stream: &TcpStream, conn: &mut Conn, bytes: &[u8]) {
    let _ = stream.set_write_timeout(Some(CLIENT_LIMIT));
    let _ = conn.write_all(bytes);
    if let Conn::Tls(t) = conn {
        t.conn.send_close_notify();
    }
    let _ = conn.flush();
}

/// Reads the request head within the limits (over TLS when the endpoint has a certificate: the
/// handshake counts in the limit), checks its credentials (when the endpoint has users), hands
/// it to the worker, writes the answer.
fn serve(stream: TcpStream, ends: Ends, state: &Arc<ConnState>, security: Arc<Security>) {
    let Ok(own) = stream.try_clone() else {
        return;
    };
    let own = Sock {
        stream: own,
        deadline: Instant::now() + CLIENT_LIMIT,
        state: Arc::clone(state),
    };
    let mut conn = match &security.tls {
        Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
            Ok(c) => Conn::Tls(Box::new(rustls::StreamOwned::new(c, own))),
            Err(_) => return,
        },
        None => Conn::Plain(own),
    };
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head = loop {
        let left = CLIENT_LIMIT.saturating_sub(started.elapsed());
        if left.is_zero() {
            break Head::Bad(408);
        }
        let _ = stream.set_read_timeout(Some(left));
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                let old_len = buf.len();
                buf.extend_from_slice(&chunk[..n]);
                if !worth_parsing(&buf, old_len) {
                    continue;
                }
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
        Head::Request {
            method,
            path,
            query,
            authorization,
        } if Method::parse(&method).is_some() => {
            // OPTIONS (HAProxy's default check): the status GET would get, no body
            let method = Method::parse(&method).unwrap_or(Method::Get);
            // the users as they are now (a user removed at a reload is refused on a connection
            // opened before it too); the TLS of the connection's start
            let verdict = Arc::clone(&lock(&ends.security)).allows(&path, authorization.as_deref());
            let refused = match verdict {
                Verdict::Allow => None,
                Verdict::Busy => Some(response(
                    503,
                    "text/plain",
                    b"busy checking credentials\n",
                    method,
                )),
                Verdict::Deny => Some(response(401, "text/plain", b"credentials needed\n", method)),
            };
            if let Some(answer) = refused {
                if state.pass(READING, WRITING) {
                    finish(&stream, &mut conn, &answer, &mut chunk);
                }
                return;
            }
            let routing = routing::is_routing(&path);
            if routing {
                // a state read under ROUTING_FRESH ago answers at once, without the worker
                let last = lock(&ends.last);
                if last
                    .as_ref()
                    .is_some_and(|(at, _)| at.elapsed() < ROUTING_FRESH)
                {
                    let answer = routing_answer(&path, &query, method, &last);
                    drop(last);
                    if state.pass(READING, WRITING) {
                        finish(&stream, &mut conn, &answer, &mut chunk);
                    }
                    return;
                }
            }
            let (tx, rx) = mpsc::channel();
            let job = Job {
                path: path.clone(),
                query: query.clone(),
                method,
                reply: tx,
            };
            if !state.pass(READING, WAITING) || ends.jobs.send(job).is_err() {
                return;
            }
            if routing {
                // a load balancer's probe is answered within ROUTING_WAIT whatever the worker
                // is doing: from a fresh state when it is free, else from the last one
                match rx.recv_timeout(ROUTING_WAIT) {
                    Ok(a) => a,
                    Err(_) => routing_answer(&path, &query, method, &lock(&ends.last)),
                }
            } else {
                match rx.recv_timeout(Duration::from_secs(60)) {
                    Ok(a) => a,
                    Err(_) => response(503, "text/plain", b"busy\n", method),
                }
            }
        }
        Head::Request { .. } => response(
            405,
            "text/plain",
            b"only GET, HEAD and OPTIONS\n",
            Method::Get,
        ),
        Head::Bad(status) => response(status, "text/plain", b"bad request\n", Method::Get),
        Head::Incomplete => return,
    };
    if !state.pass(READING, WRITING) && !state.pass(WAITING, WRITING) {
        // evicted: the acceptor answered
        return;
    }
    finish(&stream, &mut conn, &answer, &mut chunk);
}

/// Writes the answer, then ends the connection gently.
fn finish(stream: &TcpStream, conn: &mut Conn, answer: &[u8], chunk: &mut [u8]) {
    write_all(stream, conn, answer);
    // the end of the answer now (the acceptor's handle keeps the socket open a while); what
    // the client sent past its head is read and dropped for a moment, so that the close does
    // not reset the connection before the client read the answer
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match (&*stream).read(chunk) {
            Ok(n) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// How much of its head a connection has sent: what its thread read, and what waits in its
/// socket (peeked without blocking: the thread's reads are untouched), at most 64 KiB.
fn progress(handle: &TcpStream, state: &ConnState) -> usize {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 1024];
    // SAFETY: recv into a buffer of its stated length; MSG_PEEK leaves the bytes in the socket,
    // MSG_DONTWAIT never blocks
    let waiting = unsafe {
        libc::recv(
            handle.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    state.received.load(Ordering::SeqCst) + usize::try_from(waiting).unwrap_or(0)
}

/// Accepts connections (on a thread of its own, touching no PostgreSQL state): each to a thread
/// of its own; at the limit the oldest connection still reading its head (or writing) is closed
/// to make room; 503 when every connection waits for an answer.
fn accept_loop(listener: TcpListener, ends: Ends) {
    let live = Arc::new(AtomicUsize::new(0));
    // each open connection: its socket, its state, whether it speaks TLS (then nothing is
    // written to it in plain text)
    let mut open: VecDeque<(TcpStream, Arc<ConnState>, bool)> = VecDeque::new();
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(_) => {
                // out of descriptors, or a connection reset before it was accepted
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        open.retain(|(_, s, _)| s.phase.load(Ordering::SeqCst) < DONE);
        let security = Arc::clone(&lock(&ends.security));
        let tls = security.tls.is_some();
        if open.len() >= MAX_CONNECTIONS {
            // room from a connection still reading its head: first the oldest that has sent
            // under REAL_HEAD bytes of it (read by its thread, or waiting in its socket) and is
            // older than HEAD_IN_FLIGHT, then the oldest younger one, then the oldest with a
            // real head; else from the oldest still writing its answer. A real request's head
            // comes whole at once: clients that connect, send a byte and reconnect at once go
            // first, and never push out a request whose thread has not read it yet
            let reader = open
                .iter()
                .enumerate()
                .filter(|(_, (_, s, _))| s.phase.load(Ordering::SeqCst) == READING)
                .min_by_key(|(i, (h, s, _))| {
                    let class = match (
                        progress(h, s) >= REAL_HEAD,
                        s.opened.elapsed() >= HEAD_IN_FLIGHT,
                    ) {
                        (false, true) => 0,
                        (false, false) => 1,
                        (true, _) => 2,
                    };
                    (class, *i)
                })
                .map(|(i, _)| i)
                .filter(|&i| open[i].1.pass(READING, EVICTED));
            let victim = reader.or_else(|| {
                open.iter()
                    .position(|(_, s, _)| s.phase.load(Ordering::SeqCst) == WRITING)
            });
            if let Some((oldest, _, oldest_tls)) = victim.and_then(|i| open.remove(i)) {
                if reader.is_some() && !oldest_tls {
                    let _ = oldest.set_nonblocking(true);
                    let _ = (&oldest).write_all(&response(
                        503,
                        "text/plain",
                        b"too many connections: yours was the slowest\n",
                        Method::Get,
                    ));
                }
                let _ = oldest.shutdown(Shutdown::Both);
            }
        }
        if open.len() >= MAX_CONNECTIONS || live.load(Ordering::SeqCst) >= MAX_THREADS {
            if !tls {
                let busy = response(503, "text/plain", b"too many connections\n", Method::Get);
                let _ = stream.set_nonblocking(true);
                let _ = (&stream).write_all(&busy);
            }
            continue;
        }
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        let state = Arc::new(ConnState {
            phase: AtomicU8::new(READING),
            opened: Instant::now(),
            received: AtomicUsize::new(0),
        });
        live.fetch_add(1, Ordering::SeqCst);
        let (mine, alive, ends) = (Arc::clone(&state), Arc::clone(&live), ends.clone());
        let spawned = std::thread::Builder::new()
            .name("pgse-http".into())
            .stack_size(512 * 1024)
            .spawn(move || {
                serve(stream, ends, &mine, security);
                mine.phase.store(DONE, Ordering::SeqCst);
                alive.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(_) => open.push_back((handle, state, tls)),
            Err(_) => {
                live.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
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

/// Runs `f` in a transaction and a subtransaction of its own; an error is caught, rolled back and
/// returned as its message (the worker goes on). The one wrapper of the endpoint's SPI calls.
fn guarded<R>(f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    // PostgreSQL arms statement_timeout for a client's statements only: armed here, for each
    // of the worker's queries
    let timer = crate::timer::arm(STATEMENT_LIMIT_MS);
    let result = guarded_transaction(f);
    if timer.disarm() {
        return Err(format!("ran over {STATEMENT_LIMIT_MS} ms"));
    }
    result
}

/// Every query of the worker ends within this.
const STATEMENT_LIMIT_MS: i32 = 10_000;

fn guarded_transaction<R>(f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    BackgroundWorker::transaction(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the subtransaction dance of PL/pgSQL's exception blocks: begin, run, release on
        // success; on error restore the memory context and resource owner, then roll back
        unsafe {
            let cxt = pg_sys::CurrentMemoryContext;
            let owner = pg_sys::CurrentResourceOwner;
            pg_sys::BeginInternalSubTransaction(std::ptr::null());
            let result = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
                let v = f();
                pg_sys::ReleaseCurrentSubTransaction();
                pg_sys::MemoryContextSwitchTo(cxt);
                pg_sys::CurrentResourceOwner = owner;
                v
            }))
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
    }))
}

/// Runs one query returning text (guarded).
fn query_text(sql: &'static str) -> Result<String, String> {
    let text = guarded(|| {
        crate::catalog::read_one::<String>(sql)
            .map_err(|e| e.to_string())
            .and_then(|v| v.ok_or_else(|| "no answer".to_owned()))
    });
    // a session-level advisory lock taken by something a page's query reached (a custom
    // metric's) outlives its transaction: the worker holds none of its own, so none stays
    let _ = guarded(|| {
        crate::catalog::read_one::<bool>("SELECT pg_catalog.pg_advisory_unlock_all() IS NULL")
            .map_err(|e| e.to_string())
    });
    text
}

/// Whether the postmaster takes new connections: the status line of `postmaster.pid` in the data
/// directory (`stopping` from the start of any shutdown, smart included). Read as a file of at
/// most 4 KiB; unreadable, it says nothing against it.
fn postmaster_accepting() -> bool {
    // SAFETY: DataDir is set at postmaster start and never freed
    let dir = unsafe {
        if pg_sys::DataDir.is_null() {
            return true;
        }
        std::ffi::CStr::from_ptr(pg_sys::DataDir)
            .to_string_lossy()
            .into_owned()
    };
    let mut text = String::new();
    match std::fs::File::open(std::path::Path::new(&dir).join("postmaster.pid"))
        .and_then(|f| f.take(4096).read_to_string(&mut text))
    {
        Ok(_) => routing::accepting(&text),
        Err(_) => true,
    }
}

/// The server's state for the routing endpoints (`storage._routing_state()`, guarded).
fn routing_state() -> Result<routing::State, String> {
    guarded(|| {
        Spi::connect(|client| {
            let row = client
                .select(
                    "SELECT standby, receiving, replication, byte_lag::pg_catalog.float8, lag_seconds, \
                            clients, client_slots FROM storage._routing_state()",
                    Some(1),
                    &[],
                )?
                .first();
            Ok::<_, pgrx::spi::Error>(routing::State {
                standby: row.get::<bool>(1)?.unwrap_or(false),
                accepting: postmaster_accepting(),
                receiving: row.get::<bool>(2)?.unwrap_or(false),
                replication: row.get::<String>(3)?.unwrap_or_default(),
                byte_lag: row.get::<f64>(4)?,
                lag_seconds: row.get::<f64>(5)?,
                clients: row.get::<i64>(6)?.unwrap_or(0),
                client_slots: row.get::<i64>(7)?.unwrap_or(0),
            })
        })
        .map_err(|e| e.to_string())
    })
}

/// A path the endpoint serves: its query, content type and how long an answer is reused.
struct Route {
    sql: &'static str,
    content_type: &'static str,
    ttl: Duration,
}

fn route(path: &str) -> Option<Route> {
    match path {
        "/metrics" => Some(Route {
            sql: "SELECT storage.metrics_prometheus()",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            ttl: Duration::from_secs(1),
        }),
        "/" => Some(Route {
            sql: "SELECT storage.health_report_html()",
            content_type: "text/html; charset=utf-8",
            ttl: Duration::from_secs(10),
        }),
        _ => None,
    }
}

/// An answer computed at `at`: status, content type and body.
struct Cached {
    at: Instant,
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

fn answer(
    job: &Job,
    cache: &mut HashMap<&'static str, Cached>,
    last: &Mutex<LastState>,
) -> Vec<u8> {
    if routing::is_routing(&job.path) {
        // the lock is never held while the state is read: a connection thread answering from
        // the last state does not wait for the query
        let stale = lock(last)
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= ROUTING_FRESH);
        if stale {
            refresh_routing_state(last);
        }
        return routing_answer(&job.path, &job.query, job.method, &lock(last));
    }
    let Some(r) = route(&job.path) else {
        return response(
            404,
            "text/plain",
            b"not found: try /metrics, /, /primary, /replica, /read-only, /health, /liveness or /readiness\n",
            job.method,
        );
    };
    let fresh = cache.get(r.sql).is_some_and(|c| c.at.elapsed() < r.ttl);
    if !fresh {
        let at = Instant::now();
        let computed = match query_text(r.sql) {
            Ok(body) => Cached {
                at,
                status: 200,
                content_type: r.content_type,
                body: body.into_bytes(),
            },
            Err(msg) => {
                pgrx::log!("pg_storage_ext http: {} failed: {msg}", job.path);
                Cached {
                    at,
                    status: 500,
                    content_type: "text/plain",
                    body: b"the query failed; see the server log\n".to_vec(),
                }
            }
        };
        cache.insert(r.sql, computed);
    }
    let c = &cache[r.sql];
    response(c.status, c.content_type, &c.body, job.method)
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_http_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let [db, role, supervisor] = crate::worker::numbers(BackgroundWorker::get_extra())[..] else {
        pgrx::warning!(
            "pg_storage_ext http: the endpoint's worker runs only when its supervisor starts it"
        );
        return;
    };
    // the role need not have LOGIN (nobody logs in: the administrator named it in the server's
    // configuration)
    crate::worker::connect_as(db, role);
    // first, in a query that resolves no name through it: the search_path the database's owner
    // may have set (ALTER DATABASE ... SET) never decides what the worker's queries call
    let _ = BackgroundWorker::transaction(|| {
        crate::catalog::read_one::<String>(
            "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)",
        )
    });
    let superuser = BackgroundWorker::transaction(|| {
        crate::catalog::read_one::<bool>(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user",
        )
    });
    if !matches!(superuser, Ok(Some(false))) {
        pgrx::warning!(
            "pg_storage_ext http: not serving: the role is a superuser (or unknown); set pg_storage_ext.http_role to a role with pg_monitor"
        );
        return;
    }
    // settings through a read-only query: pgrx's writing SPI calls take a transaction id, which a
    // hot standby has none of
    let _ = BackgroundWorker::transaction(|| {
        crate::catalog::read_one::<String>(
            "SELECT pg_catalog.set_config('lock_timeout', '1s', false), \
                    pg_catalog.set_config('standard_conforming_strings', 'on', false), \
                    pg_catalog.set_config('application_name', 'pg_storage_ext http', false)",
        )
    });
    // TLS and users before the port opens: never plain text where TLS was asked for, never
    // open where a users file was
    let security = match secure::load() {
        Ok(s) => Arc::new(s),
        Err(e) => {
            pgrx::warning!("pg_storage_ext http: not serving: {e}");
            return;
        }
    };
    let described = security.describe();
    let security = Arc::new(Mutex::new(security));
    let listen = gucs::text(&gucs::HTTP_LISTEN).trim().to_owned();
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            pgrx::warning!("pg_storage_ext http: cannot listen on {listen:?}: {e}");
            return;
        }
    };
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let last: Arc<Mutex<LastState>> = Arc::new(Mutex::new(None));
    let ends = Ends {
        jobs: jobs_tx,
        last: Arc::clone(&last),
        security: Arc::clone(&security),
    };
    let acceptor = without_signals(move || {
        std::thread::Builder::new()
            .name("pgse-http-accept".into())
            .spawn(move || accept_loop(listener, ends))
    });
    if let Err(e) = acceptor {
        pgrx::warning!("pg_storage_ext http: cannot start the accepting thread: {e}");
        return;
    }
    pgrx::log!(
        "pg_storage_ext http: serving /metrics, / and the routing endpoints on {listen} ({} as {}; {described})",
        gucs::text(&gucs::HTTP_DATABASE),
        gucs::text(&gucs::HTTP_ROLE)
    );
    let mut cache: HashMap<&'static str, Cached> = HashMap::new();
    // a state before the first probe: one arriving while the worker computes a page is answered
    refresh_routing_state(&last);
    let mut checked = Instant::now();
    // every 5 ms: a request waits at most that for the worker to see it (a probe whose state is
    // fresh does not wait at all)
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(5))) {
        // requests read so far: answered here, on the worker's thread
        // (the routing endpoints first: a load balancer's probe is not queued behind a page)
        let mut jobs: Vec<Job> = jobs_rx.try_iter().collect();
        jobs.sort_by_key(|j| !routing::is_routing(&j.path));
        for job in jobs {
            let a = answer(&job, &mut cache, &last);
            let _ = job.reply.send(a);
        }
        // a reload: the settings the routing endpoints read (default_transaction_read_only)
        if BackgroundWorker::sighup_received() {
            // SAFETY: outside any transaction, on the worker's own thread, as PostgresMain does
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            // the certificate and the users again (a renewed certificate needs no restart); a
            // file that cannot be used keeps the previous ones
            match secure::load() {
                Ok(s) => {
                    pgrx::log!(
                        "pg_storage_ext http: reloaded its TLS and users: {}",
                        s.describe()
                    );
                    *lock(&security) = Arc::new(s);
                }
                Err(e) => {
                    pgrx::warning!("pg_storage_ext http: kept its TLS and users as they were: {e}")
                }
            }
        }
        // the statistics of the queries run (pg_stat_database, pg_stat_user_functions): a
        // worker outside PostgresMain sends them only when asked
        // SAFETY: outside any transaction; sends at most once a second
        unsafe { pg_sys::pgstat_report_stat(false) };
        if checked.elapsed() >= Duration::from_secs(1) {
            checked = Instant::now();
            // SAFETY: signal 0 only checks that the process exists
            if unsafe { libc::kill(supervisor as libc::pid_t, 0) } != 0 {
                pgrx::log!("pg_storage_ext http: stopping: the supervisor that started this worker is gone");
                return;
            }
        }
    }
    pgrx::log!(
        "pg_storage_ext http: stopping on SIGTERM (pg_terminate_backend, or the server shutting down); unless the server is shutting down, the supervisor starts the endpoint again"
    );
}
