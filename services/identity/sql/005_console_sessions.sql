-- 005_console_sessions: web console logins (services/identity/sessions.c). The browser
-- holds the session token in an HttpOnly cookie; only its SHA-256 is stored, so a copy
-- of this table logs nobody in. A session ends at expires_at, at logout, when the
-- operator revokes the user's sessions, when the password changes, or with the user.
CREATE TABLE console_sessions (
    token_hash  bytea PRIMARY KEY,                    -- sha256(token)
    user_id     text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf        text NOT NULL,                        -- sent back as X-Virga-CSRF on every call
    address     text NOT NULL DEFAULT '',             -- where the login came from (shown, not enforced)
    -- the session's own S3 credentials (ASIA...), for the gateway's object store proxy:
    -- identity.signing_key knows them while the session lives; the secret is sealed
    access_key_id text NOT NULL UNIQUE,
    secret_box  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions(user_id);
CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);

-- Failed console logins per user in the current window: past the limit the user cannot
-- log in (even with the right password) until the window ends. Per-address limits are
-- the gateway's (authfail).
CREATE TABLE console_login_failures (
    user_id     text PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    failures    integer NOT NULL,
    window_from timestamptz NOT NULL
);
