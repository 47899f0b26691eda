-- The audit change feed (issue 40): what having a feed costs the writers of a fed table, and how
-- fast one consumer reads. bench/audit_feed.sh adds the pgbench UPDATE overhead, the consumer's
-- throughput with a commit per batch, and the LISTEN wake-up latency under 8 writers.
-- 1. Bulk INSERT ... SELECT of 100k rows into an audited table a feed reads vs into the same
--    audited table that no feed reads (goal <= 1.05).
SELECT (100000 * :scale)::int AS rows \gset
CREATE TABLE bench.f_src AS
SELECT i::bigint AS id, 'Article title number ' || i AS title, repeat(md5(i::text), 6) AS body, 0 AS n
  FROM generate_series(1, :rows) AS i;
CREATE TABLE bench.f_fed (id bigint PRIMARY KEY, title text, body text, n int);
CREATE TABLE bench.f_plain (LIKE bench.f_fed INCLUDING ALL);
SELECT audit.enable('bench.f_fed');
SELECT audit.enable('bench.f_plain');
SELECT audit.create_feed('bench', ARRAY['bench.f_fed']::regclass[]);
VACUUM ANALYZE bench.f_src;
SELECT bench.compare('audit feed: INSERT ... SELECT 100k rows into an audited table a feed reads vs one no feed reads',
    'INSERT INTO bench.f_fed SELECT * FROM bench.f_src',
    'INSERT INTO bench.f_plain SELECT * FROM bench.f_src',
    'TRUNCATE bench.f_fed, bench.f_plain; TRUNCATE audit._log_row, audit._log_statement', 5, '<= 1.05');
SELECT audit.drop_feed('bench');
TRUNCATE bench.f_fed, bench.f_plain;
TRUNCATE audit._log_row, audit._log_statement;
