-- How an account signs in: 'local' (a password) or 'oidc' (the council's provider: no usable password).
ALTER TABLE users ADD COLUMN sign_in text NOT NULL DEFAULT 'local';

-- The ID token of a council (OIDC) session, sent back as id_token_hint when the user signs out (RP-initiated
-- logout), so the provider's session ends too.
ALTER TABLE sessions ADD COLUMN id_token text;

-- Every change an administrator makes to an account: who, when, what.
CREATE TABLE account_audit (
    audit_id  bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    user_id   text NOT NULL,
    action    text NOT NULL,          -- created, disabled, enabled, password_reset
    details   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX account_audit_at ON account_audit (at DESC);
CREATE INDEX account_audit_user ON account_audit (user_id, at DESC);
