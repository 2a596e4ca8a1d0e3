-- Inbox retention: handled ids older than INBOX_RETENTION_DAYS are pruned (shared/inbox.py).
CREATE INDEX inbox_handled_at ON inbox (handled_at);
