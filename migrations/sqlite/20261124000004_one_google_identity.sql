-- One account has at most one identity per provider (one Google account).
CREATE UNIQUE INDEX identities_one_per_provider ON identities (user_id, provider);
