-- Online schema changes benchmark (bench/online_schema.sh does the timing with 8 pgbench writers):
-- two identical tables, one changed by a plain ALTER TABLE … TYPE, the other by
-- storage.alter_column_type, 1,000,000 rows each at scale 1, an index on the changed column.
\set rows (1000000 * :scale)::bigint
CREATE TABLE bench.osc_plain (id int PRIMARY KEY, author_id int NOT NULL, views int NOT NULL DEFAULT 0, title text, touched int NOT NULL DEFAULT 0);
INSERT INTO bench.osc_plain SELECT g, g % 1000 + 1, g % 997, 'title ' || g, 0 FROM generate_series(1, :rows) g;
CREATE INDEX osc_plain_views ON bench.osc_plain (views);
CREATE TABLE bench.osc_ours (LIKE bench.osc_plain INCLUDING ALL);
INSERT INTO bench.osc_ours SELECT * FROM bench.osc_plain;
CREATE TABLE bench.osc_floor (LIKE bench.osc_plain INCLUDING ALL);
INSERT INTO bench.osc_floor SELECT * FROM bench.osc_plain;
CREATE SEQUENCE bench.osc_ids START 100000001;
VACUUM ANALYZE bench.osc_plain, bench.osc_ours, bench.osc_floor;
