-- What else an audited act needs to be understood (a break-glass reason, the address a sign-in came from),
-- hashed into the chain with the row when present (shared/audit.py); NULL for an event published to *.events.
ALTER TABLE audit_log ADD COLUMN details jsonb;
