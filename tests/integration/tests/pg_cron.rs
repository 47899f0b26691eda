//! pg_cron in the test cluster runs jobs that call extension functions.

use pg_storage_integration::{connect, fresh_db, wait_for};
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

    let status: String = cron
        .query_one(
            "SELECT status FROM cron.job_run_details WHERE jobid = $1 ORDER BY runid LIMIT 1",
            &[&job],
        )
        .expect("run details")
        .get(0);
    assert_eq!(status, "succeeded");
}
