-- Calls leave a record in the conversation: a message from the caller with an empty body.
-- `call_outcome` is 'missed', 'rejected' or 'completed'; NULL for text messages.
ALTER TABLE messages ADD COLUMN call_outcome TEXT;
ALTER TABLE messages ADD COLUMN call_secs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN call_video INTEGER NOT NULL DEFAULT 0;
