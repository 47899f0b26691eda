-- Time partitions of a table keyed by uuidv7 (PostgreSQL 18's uuidv7()): bounds are the uuids of
-- the period starts, names and retention follow the time the keys encode, ensure_partition takes
-- a uuid or a timestamp.
\ir ../include/helpers.sql
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE TABLE events (id uuid NOT NULL DEFAULT uuidv7(), body text, PRIMARY KEY (id)) PARTITION BY RANGE (id);
SELECT storage.create_partitions('events', '1 day', 2) AS made;   -- today, 2 days ahead, default
INSERT INTO events (body) VALUES ('now');
SELECT tableoid::regclass = (SELECT partition FROM storage.partitions('events')
                              WHERE NOT is_default AND lower_bound::uuid <= events.id AND events.id < upper_bound::uuid) AS in_todays_child
  FROM events;
-- a timestamp names the period: the child is named after the day, bounded by uuids of midnights
SELECT storage.ensure_partition('events', '2026-01-15 13:45:00+00') AS child;
SELECT lower_bound, upper_bound FROM storage.partitions('events') WHERE partition = 'events_p20260115'::regclass;
SELECT uuid_extract_timestamp(uuidv7()) > storage._partition_uuid_time(lower_bound) AS bound_is_a_time
  FROM storage.partitions('events') WHERE partition = 'events_p20260115'::regclass;
-- rows of a day without a child wait in the default; ensure_partition with a uuid moves them
INSERT INTO events (id, body) VALUES (uuidv7('-40 days'), 'old');
SELECT count(*) AS in_default FROM ONLY events_default;
SELECT storage.ensure_partition('events', (SELECT id::text FROM events WHERE body = 'old')) =
       to_char(now() - interval '40 days', '"events_p"YYYYMMDD')::regclass AS moved_into_its_day;
SELECT count(*) AS in_default FROM ONLY events_default;
-- and maintenance drains them the same way
INSERT INTO events (id, body) VALUES (uuidv7('10 days'), 'ahead');
SELECT moved_from_default FROM storage.run_maintenance('events');
-- only uuidv7 keys encode a time
SELECT pg_temp.outcome($$SELECT storage.ensure_partition('events', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')$$);
SELECT pg_temp.outcome($$SELECT storage.ensure_partition('events', 'not a uuid')$$);
-- retention counts from the time the keys encode
UPDATE storage.partition_config SET retention = '30 days' WHERE parent = 'events'::regclass;
SELECT dropped >= 2 AS dropped_old_days FROM storage.run_maintenance('events');
SELECT count(*) AS rows_left, bool_and(uuid_extract_timestamp(id) > now() - interval '31 days') AS all_recent FROM events;
DROP TABLE events;
