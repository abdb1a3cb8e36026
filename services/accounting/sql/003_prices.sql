-- 003_prices: the price list in force, as loaded from accounting.price_list (YAML,
-- prices.c) at every start and whenever the file changes. A period's prices apply to
-- usage that starts on or after its effective date, until the next period's: a new
-- period never reprices usage before its date. unit_price is per record unit (second,
-- byte-hour, byte), derived from the list's per-hour, per-GB-month and per-GB prices.
CREATE TABLE prices (
    effective    timestamptz NOT NULL,
    usage_type   text NOT NULL,
    item         text NOT NULL,           -- an instance type, or '*' for any
    public       boolean NOT NULL,        -- priced for the public cloud (markup on its remote price)
    currency     text NOT NULL,
    list_price   numeric NOT NULL,        -- as written in the list (per hour, per GB-month, per GB)
    list_unit    text NOT NULL,           -- hour | GB-month | GB
    per_unit     numeric NOT NULL,        -- record units in one list unit (3600 s per hour, ...)
    markup       numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (effective, usage_type, item, public)
);

-- The price of a record: its period's row for its item, else the period's default.
CREATE FUNCTION price_of(p_type text, p_item text, p_cloud text, p_at timestamptz) RETURNS prices
LANGUAGE sql STABLE AS $$
    SELECT * FROM prices
    WHERE usage_type = p_type AND item IN (p_item, '*') AND public = (p_cloud <> 'private')
      AND effective = (SELECT max(effective) FROM prices WHERE effective <= p_at)
    ORDER BY item = '*' LIMIT 1
$$;
