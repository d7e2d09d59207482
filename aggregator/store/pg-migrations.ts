/**
 * The PostgreSQL schema, as an append-only list of migrations like SQLite's (`migrations.ts`).
 * Version 1 is SQLite's version 2 in one step: no PostgreSQL database predates the ledger.
 * Column names and meanings match SQLite's, so both stores share their row mapping.
 *
 * Constraints are named: `PgStore` tells a duplicate version from a duplicate model or an
 * unknown round by the constraint PostgreSQL reports.
 *
 * Never edit a migration that has shipped; add the next one.
 */
import type { Migration } from './migrations.ts'

export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'models, model versions, rounds, the privacy ledger and per-model privacy state',
    sql: `
      CREATE TABLE models (
        name        text CONSTRAINT models_pkey PRIMARY KEY,
        spec        jsonb NOT NULL,
        created_at  bigint NOT NULL
      );

      -- An identity column draws from a sequence, and sequences are never rolled back, so a
      -- round id is never reused even after a failed insert (PostgreSQL docs, "Sequence
      -- Manipulation Functions"): clients put round ids in their frames.
      CREATE TABLE rounds (
        id                bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT rounds_pkey PRIMARY KEY,
        model             text NOT NULL CONSTRAINT rounds_model_fkey REFERENCES models (name),
        base_version      integer NOT NULL,
        stage             text NOT NULL,
        config            jsonb NOT NULL,
        created_at        bigint NOT NULL,
        selected_at       bigint,
        upload_deadline   bigint,
        closed_at         bigint,
        eligible          integer NOT NULL DEFAULT 0,
        participants      integer NOT NULL DEFAULT 0,
        uploads_accepted  integer NOT NULL DEFAULT 0,
        dropped           integer NOT NULL DEFAULT 0,
        rejections        jsonb NOT NULL DEFAULT '{}',
        outcome           text CHECK (outcome IN ('published', 'aborted')),
        reason            text,
        published_version integer,
        privacy           jsonb
      );
      CREATE INDEX rounds_by_model ON rounds (model, id);
      CREATE INDEX rounds_unfinished ON rounds (id) WHERE outcome IS NULL;

      -- Aggregates only: an individual client update is never written (DESIGN.md §3).
      CREATE TABLE model_versions (
        model       text NOT NULL CONSTRAINT model_versions_model_fkey REFERENCES models (name),
        version     integer NOT NULL,
        weights     bytea NOT NULL,
        sha256      text NOT NULL,
        created_at  bigint NOT NULL,
        round_id    bigint CONSTRAINT model_versions_round_fkey REFERENCES rounds (id),
        CONSTRAINT model_versions_pkey PRIMARY KEY (model, version)
      );

      -- Append-only: one row per published DP round, written in the transaction that publishes
      -- its version.
      CREATE TABLE privacy_ledger (
        id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT privacy_ledger_pkey PRIMARY KEY,
        model        text NOT NULL REFERENCES models (name),
        round_id     bigint NOT NULL CONSTRAINT privacy_ledger_round_key UNIQUE
                       CONSTRAINT privacy_ledger_round_fkey REFERENCES rounds (id),
        version      integer NOT NULL,
        recorded_at  bigint NOT NULL,
        mode         text NOT NULL,
        epsilon      double precision NOT NULL,
        delta        double precision NOT NULL,
        entry        jsonb NOT NULL,
        CONSTRAINT privacy_ledger_version_fkey FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
      );
      CREATE INDEX privacy_ledger_by_model ON privacy_ledger (model, id);

      CREATE TABLE privacy_state (
        model      text CONSTRAINT privacy_state_pkey PRIMARY KEY
                     CONSTRAINT privacy_state_model_fkey REFERENCES models (name),
        clip_norm  double precision,
        refusal    jsonb
      );
    `,
  },
  {
    version: 2,
    description: 'secure aggregation: per-round parameters and group counts',
    sql: `
      -- RoundSecAggRecord (sizes and counts only); NULL for plain rounds. Shares and masked
      -- vectors are never written (DESIGN.md §3).
      ALTER TABLE rounds ADD COLUMN secagg jsonb;
    `,
  },
  {
    version: 3,
    description: 'the audit log: admin actions and round outcomes, append-only',
    sql: `
      -- Counts and hashes only: never an individual update or a client identity (DESIGN.md §3).
      CREATE TABLE audit_log (
        id       bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT audit_log_pkey PRIMARY KEY,
        at       bigint NOT NULL,
        actor    text NOT NULL,
        action   text NOT NULL,
        subject  text NOT NULL,
        details  jsonb NOT NULL
      );

      -- Append-only beyond the store's interface too: UPDATE, DELETE and TRUNCATE are refused
      -- (PostgreSQL docs, "CREATE TRIGGER": TRUNCATE fires statement-level triggers only).
      CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only';
      END
      $$;
      CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
      CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
    `,
  },
  {
    version: 4,
    description: "adaptive server optimizers: each version's moments",
    sql: `
      -- As SQLite's optimizer_state: m and v after the round that published the version.
      CREATE TABLE optimizer_state (
        model      text NOT NULL,
        version    integer NOT NULL,
        optimizer  text NOT NULL,
        rounds     integer NOT NULL,
        m          bytea NOT NULL,
        v          bytea NOT NULL,
        CONSTRAINT optimizer_state_pkey PRIMARY KEY (model, version),
        CONSTRAINT optimizer_state_version_fkey FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
      );
    `,
  },
]

/** The PostgreSQL schema version this build writes. */
export const PG_SCHEMA_VERSION = PG_MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0)
