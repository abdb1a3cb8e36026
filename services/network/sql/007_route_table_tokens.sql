-- 007_route_table_tokens: CreateRouteTable's ClientToken (today's SDKs fill one in on every
-- call and retry with it): the first answer for each (account, token), with a hash of the
-- request's other parameters so the same token with other parameters is
-- IdempotentParameterMismatch. Written in the transaction that makes the table; the
-- primary key makes two concurrent retries make one table.
CREATE TABLE route_table_tokens (
    account_id     char(12) NOT NULL,
    client_token   text NOT NULL,
    request_hash   text NOT NULL,
    route_table_id text NOT NULL,
    reply          jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, client_token)
);
