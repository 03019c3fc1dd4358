-- helios detect: window aggregates, anomalies and model snapshots.
--
-- `windows` and `anomalies` are time series. With the `timescaledb` extension available (and
-- loadable) they become hypertables on their time column; otherwise they are natively
-- range-partitioned by month on that column, with a DEFAULT partition catching rows outside
-- the monthly partitions that `helios.ensure_month_partitions` creates (the worker calls it at
-- start-up and daily). Every unique key includes the time column, as both designs require.

CREATE SCHEMA IF NOT EXISTS helios;

DO $$
DECLARE
  use_timescale boolean := false;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS timescaledb;
      use_timescale := true;
    EXCEPTION WHEN OTHERS THEN
      -- Available but not loadable (e.g. not in shared_preload_libraries): fall back.
      RAISE NOTICE 'timescaledb not usable (%): using native partitioning', SQLERRM;
    END;
  END IF;

  IF use_timescale THEN
    CREATE TABLE helios.windows (
      detector      text             NOT NULL,
      key           text             NOT NULL,
      window_start  timestamptz      NOT NULL,
      window_end    timestamptz      NOT NULL,
      features      jsonb            NOT NULL,
      score         double precision,
      anomalous     boolean          NOT NULL DEFAULT false,
      model_version bigint           NOT NULL DEFAULT 0,
      drivers       jsonb,
      written_at    timestamptz      NOT NULL DEFAULT now(),
      PRIMARY KEY (detector, key, window_start)
    );
    PERFORM create_hypertable('helios.windows', 'window_start',
                              chunk_time_interval => interval '1 day');
    CREATE TABLE helios.anomalies (
      anomaly_id    text             NOT NULL,
      detector      text             NOT NULL,
      fingerprint   text             NOT NULL,
      key           text             NOT NULL,
      severity      text             NOT NULL,
      score         double precision NOT NULL,
      window_start  timestamptz      NOT NULL,
      window_end    timestamptz      NOT NULL,
      fired_window_start timestamptz NOT NULL,
      resolved      boolean          NOT NULL DEFAULT false,
      explanation   jsonb            NOT NULL,
      features      jsonb            NOT NULL,
      model_version bigint           NOT NULL,
      dry_run       boolean          NOT NULL DEFAULT false,
      notified      boolean          NOT NULL DEFAULT false,
      report_uri    text,
      created_at    timestamptz      NOT NULL DEFAULT now(),
      notified_at   timestamptz,
      PRIMARY KEY (anomaly_id, window_start)
    );
    PERFORM create_hypertable('helios.anomalies', 'window_start',
                              chunk_time_interval => interval '7 days');
  ELSE
    CREATE TABLE helios.windows (
      detector      text             NOT NULL,
      key           text             NOT NULL,
      window_start  timestamptz      NOT NULL,
      window_end    timestamptz      NOT NULL,
      features      jsonb            NOT NULL,
      score         double precision,
      anomalous     boolean          NOT NULL DEFAULT false,
      model_version bigint           NOT NULL DEFAULT 0,
      drivers       jsonb,
      written_at    timestamptz      NOT NULL DEFAULT now(),
      PRIMARY KEY (detector, key, window_start)
    ) PARTITION BY RANGE (window_start);
    CREATE TABLE helios.windows_default PARTITION OF helios.windows DEFAULT;
    CREATE TABLE helios.anomalies (
      anomaly_id    text             NOT NULL,
      detector      text             NOT NULL,
      fingerprint   text             NOT NULL,
      key           text             NOT NULL,
      severity      text             NOT NULL,
      score         double precision NOT NULL,
      window_start  timestamptz      NOT NULL,
      window_end    timestamptz      NOT NULL,
      fired_window_start timestamptz NOT NULL,
      resolved      boolean          NOT NULL DEFAULT false,
      explanation   jsonb            NOT NULL,
      features      jsonb            NOT NULL,
      model_version bigint           NOT NULL,
      dry_run       boolean          NOT NULL DEFAULT false,
      notified      boolean          NOT NULL DEFAULT false,
      report_uri    text,
      created_at    timestamptz      NOT NULL DEFAULT now(),
      notified_at   timestamptz,
      PRIMARY KEY (anomaly_id, window_start)
    ) PARTITION BY RANGE (window_start);
    CREATE TABLE helios.anomalies_default PARTITION OF helios.anomalies DEFAULT;
  END IF;
END
$$;

-- Time-range scans (BRIN is tiny and fits append-mostly time series).
CREATE INDEX windows_time_brin ON helios.windows USING brin (window_start);
CREATE INDEX anomalies_time_brin ON helios.anomalies USING brin (window_start);
-- The report hook's history lookup: same fingerprint, newest first.
CREATE INDEX anomalies_fingerprint ON helios.anomalies (fingerprint, window_start DESC);
-- Outbox scan at start-up and per-detector listings.
CREATE INDEX anomalies_detector ON helios.anomalies (detector, notified, window_start);

-- Forest snapshots: the newest model per (detector, key), for inspection and status.
CREATE TABLE helios.models (
  detector      text        NOT NULL,
  key           text        NOT NULL,
  model_version bigint      NOT NULL,
  feature_names jsonb       NOT NULL,
  forest        jsonb       NOT NULL,
  trained_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (detector, key)
);

-- Creates the monthly partitions of a natively partitioned helios table around `around`
-- (no-op for hypertables). A partition whose range already has rows in DEFAULT cannot be
-- created; that is reported as a warning and the rows stay in DEFAULT.
CREATE FUNCTION helios.ensure_month_partitions(parent text, around timestamptz,
                                               months_back int, months_ahead int)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  m timestamp;
  part text;
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_partitioned_table pt
    JOIN pg_class c ON c.oid = pt.partrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'helios' AND c.relname = parent
  ) THEN
    RETURN;
  END IF;
  FOR i IN -months_back..months_ahead LOOP
    m := date_trunc('month', around AT TIME ZONE 'UTC') + make_interval(months => i);
    part := format('%s_%s', parent, to_char(m, 'YYYYMM'));
    IF to_regclass(format('helios.%I', part)) IS NULL THEN
      BEGIN
        EXECUTE format(
          'CREATE TABLE helios.%I PARTITION OF helios.%I FOR VALUES FROM (%L) TO (%L)',
          part, parent, m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
      EXCEPTION WHEN duplicate_table THEN
        NULL;
      WHEN OTHERS THEN
        RAISE WARNING 'cannot create partition helios.%: %', part, SQLERRM;
      END;
    END IF;
  END LOOP;
END
$fn$;
