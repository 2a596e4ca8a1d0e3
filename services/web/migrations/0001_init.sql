-- Tessera desk: user accounts, sessions and the break-glass access log. No case data.
CREATE TABLE users (
    user_id        text PRIMARY KEY,          -- the worker id every command carries as actor.worker_id
    display_name   text NOT NULL,
    password_hash  text NOT NULL,             -- argon2id
    roles          text[] NOT NULL DEFAULT '{}',
    team_ids       text[] NOT NULL DEFAULT '{}',
    active         boolean NOT NULL DEFAULT true,
    failed_logins  integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_hash    bytea PRIMARY KEY,          -- sha256 of the token in the signed cookie
    user_id       text NOT NULL REFERENCES users ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    flash         jsonb
);
CREATE INDEX sessions_user ON sessions (user_id);

-- break-glass: a worker opened a record they have no relationship with, and said why
CREATE TABLE access_log (
    access_id  bigserial PRIMARY KEY,
    user_id    text NOT NULL,
    roles      text[] NOT NULL DEFAULT '{}',
    team_ids   text[] NOT NULL DEFAULT '{}',
    person_id  uuid NOT NULL,
    reason     text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_log_user_person ON access_log (user_id, person_id, at DESC);
CREATE INDEX access_log_at ON access_log (at DESC);

CREATE TABLE web_secrets (
    name   text PRIMARY KEY,
    value  text NOT NULL
);
