/*
 * The LISTEN wake-up latency of a change feed's consumer (bench/audit_feed.sh): a listener
 * connection waits on `channel`; a prober connection runs `probe` (one autocommit statement that
 * commits a change whose notification carries `payload`) every 20 ms; the latency of a probe is
 * from just before its statement is sent to the moment the listener's socket delivers the
 * notification (so it includes the commit itself). Prints one latency in ms per line.
 * Usage: feed_listen CONNINFO CHANNEL PAYLOAD PROBE_SQL N
 */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

static PGconn *connect_or_die(const char *conninfo)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "connect: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static void run_or_die(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(r);
}

int main(int argc, char **argv)
{
	PGconn	   *listener, *prober;
	char		listen_sql[256];
	int			n, i;

	if (argc != 6)
	{
		fprintf(stderr, "usage: feed_listen CONNINFO CHANNEL PAYLOAD PROBE_SQL N\n");
		return 2;
	}
	n = atoi(argv[5]);
	listener = connect_or_die(argv[1]);
	prober = connect_or_die(argv[1]);
	snprintf(listen_sql, sizeof listen_sql, "LISTEN %s", argv[2]);
	run_or_die(listener, listen_sql);
	for (i = 0; i < n; i++)
	{
		double		t0 = now_ms(), waited;
		int			got = 0;

		run_or_die(prober, argv[4]);
		while (!got)
		{
			struct pollfd p = {.fd = PQsocket(listener), .events = POLLIN};
			PGnotify   *note;

			waited = now_ms() - t0;
			if (waited > 5000)
			{
				fprintf(stderr, "probe %d: no notification within 5 s\n", i);
				return 1;
			}
			if (poll(&p, 1, 100) < 0 || !PQconsumeInput(listener))
			{
				fprintf(stderr, "listener: %s", PQerrorMessage(listener));
				return 1;
			}
			while ((note = PQnotifies(listener)) != NULL)
			{
				if (strcmp(note->relname, argv[2]) == 0 && strcmp(note->extra, argv[3]) == 0)
					got = 1;
				PQfreemem(note);
			}
		}
		printf("%.3f\n", now_ms() - t0);
		fflush(stdout);
		usleep(20000);
	}
	PQfinish(listener);
	PQfinish(prober);
	return 0;
}
