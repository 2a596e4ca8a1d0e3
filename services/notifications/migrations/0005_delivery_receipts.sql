-- GOV.UK Notify's delivery receipts (issue #22 §8): when Notify says a sent message reached its recipient.
-- One Notify could not deliver becomes `failed` with the receipt's status as its error code (and a phone
-- call for the team, R-T4), so no column is needed for that.
ALTER TABLE messages ADD COLUMN delivered_at timestamptz;
CREATE INDEX messages_provider_ref ON messages (provider_ref) WHERE provider_ref IS NOT NULL;
