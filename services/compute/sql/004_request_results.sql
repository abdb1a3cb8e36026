-- Answers to requests that have no idempotency token of their own (common/replay.h): a
-- retry of the same request by the same caller gets the original answer. Sealed answers
-- (secretbox) hold secrets; every row expires.
CREATE TABLE request_results (
    key          text PRIMARY KEY,          -- SHA-256 of caller, action and parameters
    resource     text NOT NULL,             -- what the request made
    result       text NOT NULL,             -- base64 of the answer, sealed or not
    sealed       boolean NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX request_results_expiry ON request_results(expires_at);
