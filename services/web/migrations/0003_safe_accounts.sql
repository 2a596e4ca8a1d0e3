-- Issue #21 §5. Demo accounts (users.yaml, published password) are marked: they exist only in development and
-- are disabled at start-up when WEB_SEED_DEMO_USERS is off. Accounts seeded before this mark existed are the
-- users.yaml ones still signing in locally.
ALTER TABLE users ADD COLUMN demo boolean NOT NULL DEFAULT false;
UPDATE users SET demo = true WHERE sign_in = 'local'
    AND user_id IN ('hub', 'gso', 'so', 'sw', 'sw2', 'tm', 'atm', 'hos', 'admin', 'administrator');

-- An email an administrator gives a local account: a council sign-in whose token carries it, verified, links to it.
ALTER TABLE users ADD COLUMN email text;
CREATE UNIQUE INDEX users_email ON users (lower(email)) WHERE email IS NOT NULL;

-- A council account is its provider's (issuer, sub): never a name in the token, which the council may reuse.
CREATE TABLE council_identities (
    issuer     text NOT NULL,
    subject    text NOT NULL,
    user_id    text NOT NULL REFERENCES users ON DELETE CASCADE,
    linked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX council_identities_user ON council_identities (user_id);

-- Failed sign-ins, for the per-address and per-(address, account) rate limits that replace the lock-out
-- (a lock-out anyone could trigger against named staff).
CREATE TABLE sign_in_failures (
    address  text NOT NULL,
    user_id  text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_address ON sign_in_failures (address, at);
ALTER TABLE users DROP COLUMN failed_logins, DROP COLUMN locked_until;
