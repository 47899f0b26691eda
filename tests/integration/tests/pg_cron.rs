//! pg_cron in the test cluster runs jobs that call extension functions.

use pg_storage_integration::{connect, cron_state, fresh_db, wait_for};
use std::time::Duration;

#[test]
fn cron_job_calls_extension_function() {
    let mut db = fresh_db("itest_cron");
    db.batch_execute("CREATE TABLE cron_probe (v text, at timestamptz DEFAULT clock_timestamp())")
        .expect("probe table");
    let version: String = db
        .query_one("SELECT storage.version()", &[])
        .expect("version")
        .get(0);

    let mut cron = connect("postgres");
    cron.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        .expect("pg_cron");
    let job: i64 = cron
        .query_one(
            "SELECT cron.schedule_in_database('itest-probe', '1 seconds', \
             'INSERT INTO cron_probe (v) SELECT storage.version()', 'itest_cron')",
            &[],
        )
        .expect("schedule")
        .get(0);

    let seen = wait_for(Duration::from_secs(30), || {
        let rows = db.query("SELECT v FROM cron_probe", &[]).ok()?;
        rows.first().map(|r| r.get::<_, String>(0))
    });
    cron.execute("SELECT cron.unschedule($1::bigint)", &[&job])
        .expect("unschedule");
    assert_eq!(
        seen.as_deref(),
        Some(version.as_str()),
        "the cron job never ran"
    );

    // pg_cron records the run's end after the job's own transaction committed: the row the job
    // wrote can be seen while its status still says running
    let status = wait_for(Duration::from_secs(30), || {
        let status: String = cron
            .query_one(
                "SELECT status FROM cron.job_run_details WHERE jobid = $1 ORDER BY runid LIMIT 1",
                &[&job],
            )
            .ok()?
            .get(0);
        (status != "running" && status != "starting").then_some(status)
    });
    assert_eq!(status.as_deref(), Some("succeeded"));
}

/// The maintenance job schedule_jobs() creates is a CALL of run_maintenance_proc, which commits
/// after each parent: pg_cron runs it as a top-level statement, and it drains a default partition.
#[test]
fn cron_runs_the_maintenance_procedure() {
    let mut db = fresh_db("itest_cron_proc");
    db.batch_execute(
        "CREATE TABLE ev (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
         SELECT storage.create_partitions('ev', '1 day', 1);
         INSERT INTO ev SELECT g, now() + interval '6 days' FROM generate_series(1, 10) g;",
    )
    .expect("a parent with rows in its default partition");
    let mut cron = connect("postgres");
    cron.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        .expect("pg_cron");
    let job: i64 = cron
        .query_one(
            "SELECT cron.schedule_in_database('itest-proc', '1 seconds', 'CALL storage.run_maintenance_proc()', 'itest_cron_proc')",
            &[],
        )
        .expect("schedule")
        .get(0);
    let drained = wait_for(Duration::from_secs(30), || {
        let n: i64 = db
            .query_one("SELECT count(*) FROM ONLY ev_default", &[])
            .ok()?
            .get(0);
        (n == 0).then_some(())
    });
    // the drain is committed per parent, before the procedure returns and pg_cron records the
    // run: wait for the first run's final status
    let mut status: Option<String> = None;
    let _ = wait_for(Duration::from_secs(10), || {
        status = cron
            .query_opt(
                "SELECT status || coalesce(': ' || return_message, '') FROM cron.job_run_details
                  WHERE jobid = $1 ORDER BY runid LIMIT 1",
                &[&job],
            )
            .expect("run details")
            .map(|r| r.get(0));
        status
            .as_deref()
            .filter(|s| !s.starts_with("running") && !s.starts_with("starting"))
            .map(|_| ())
    });
    let state = cron_state(&mut cron);
    cron.execute("SELECT cron.unschedule($1::bigint)", &[&job])
        .expect("unschedule");
    assert!(
        drained.is_some(),
        "the job never drained the default: {status:?}; {state}"
    );
    assert!(
        status
            .as_deref()
            .is_some_and(|s| s.starts_with("succeeded")),
        "{status:?}"
    );
}

/// Jobs are chosen (issue 36, F9): schedule_jobs schedules the jobs named, unschedules the
/// others, says what each one does; the heartbeat keeps its own run history to an hour.
#[test]
fn schedule_jobs_schedules_the_jobs_chosen_and_the_heartbeat_history_stays_bounded() {
    let mut c = connect("postgres");
    c.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS pg_cron;
         CREATE EXTENSION IF NOT EXISTS pg_storage_ext;",
    )
    .expect("extensions");
    let all: Vec<String> = c
        .query("SELECT job FROM storage.schedule_jobs() ORDER BY job", &[])
        .expect("all jobs")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(all.len(), 5, "{all:?}");
    let chosen: Vec<(String, String)> = c
        .query(
            "SELECT job, effect FROM storage.schedule_jobs(jobs => ARRAY['refresh_due', 'heartbeat']) ORDER BY job",
            &[],
        )
        .expect("two jobs")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        chosen.iter().map(|(j, _)| j.as_str()).collect::<Vec<_>>(),
        ["pg_storage_ext.heartbeat", "pg_storage_ext.refresh_due"]
    );
    assert!(chosen.iter().all(|(_, e)| !e.is_empty()));
    let scheduled: Vec<String> = c
        .query(
            "SELECT jobname FROM cron.job WHERE jobname LIKE 'pg_storage_ext.%' ORDER BY jobname",
            &[],
        )
        .expect("cron.job")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        scheduled,
        ["pg_storage_ext.heartbeat", "pg_storage_ext.refresh_due"],
        "the jobs not chosen are gone"
    );
    let e = c
        .query(
            "SELECT * FROM storage.schedule_jobs(jobs => ARRAY['vacuum'])",
            &[],
        )
        .expect_err("unknown job");
    assert_eq!(e.code().map(|s| s.code()), Some("22023"));
    // the heartbeat prunes its own run history older than an hour, and nothing else
    c.batch_execute(
        "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, start_time, end_time)
         SELECT j.jobid, 900000000 + 10 * j.jobid + g, 0, 'postgres', current_user, 'x', 'succeeded',
                now() - interval '2 hours', now() - interval '2 hours'
           FROM cron.job j, generate_series(1, 3) g
          WHERE j.jobname IN ('pg_storage_ext.heartbeat', 'pg_storage_ext.refresh_due');
         SELECT storage._heartbeat();",
    )
    .expect("old runs, a beat");
    let left: Vec<(String, i64)> = c
        .query(
            "SELECT j.jobname::text, count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
              WHERE d.runid > 900000000 GROUP BY 1 ORDER BY 1",
            &[],
        )
        .expect("runs left")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(left, [("pg_storage_ext.refresh_due".to_string(), 3)]);
    c.batch_execute(
        "DELETE FROM cron.job_run_details WHERE runid > 900000000;
         SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'pg_storage_ext.%';",
    )
    .expect("cleanup");
}

/// Health that tells the truth (issue 36, F7): a job that failed (pg_cron records its runs cut
/// by a restart as failed) and then succeeded is not a failure any more.
#[test]
fn a_cron_job_failure_made_good_by_a_later_run_is_no_warning() {
    let mut c = connect("postgres");
    c.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS pg_cron;
         CREATE EXTENSION IF NOT EXISTS pg_storage_ext;
         SELECT count(*) FROM storage.schedule_jobs(jobs => ARRAY['heartbeat']);",
    )
    .expect("extensions");
    let value = |c: &mut postgres::Client| -> f64 {
        c.query_one(
            "SELECT value::float8 FROM storage.health() WHERE check_name = 'cron_job_failures'",
            &[],
        )
        .unwrap()
        .get(0)
    };
    c.batch_execute(
        "DELETE FROM cron.job_run_details;
         INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
         SELECT j.jobid, 910000001, 0, 'postgres', current_user, 'x', 'failed', 'server restarted',
                now() - interval '10 minutes', now() - interval '10 minutes'
           FROM cron.job j WHERE j.jobname = 'pg_storage_ext.heartbeat';",
    )
    .unwrap();
    assert_eq!(value(&mut c), 1.0, "a failure not made good yet");
    c.batch_execute(
        "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, start_time, end_time)
         SELECT j.jobid, 910000002, 0, 'postgres', current_user, 'x', 'succeeded',
                now() - interval '5 minutes', now() - interval '5 minutes'
           FROM cron.job j WHERE j.jobname = 'pg_storage_ext.heartbeat';",
    )
    .unwrap();
    assert_eq!(value(&mut c), 0.0, "made good by a later run");
    c.batch_execute(
        "DELETE FROM cron.job_run_details WHERE runid > 910000000;
         SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'pg_storage_ext.%';",
    )
    .unwrap();
}
