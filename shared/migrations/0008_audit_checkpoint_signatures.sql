-- Signed checkpoints (issue #18 §2): each checkpoint's digest is signed by the service's own Ed25519 key
-- (shared/audit.py, shared/signing.py Signer.seal). Whoever can rewrite the database can recompute every hash
-- and checkpoint, but cannot sign them: `tools.audit_verify --keys` checks the signatures with the trusted
-- public keys. Checkpoints written before this migration stay unsigned; once one is signed, every later one is.
ALTER TABLE audit_checkpoints ADD COLUMN signature text;
