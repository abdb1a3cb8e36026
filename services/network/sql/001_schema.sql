-- 001_schema: the network schema exists from the first start; its tables arrive with
-- the issues that give the service its API. Applied by db_migrate() under an
-- advisory lock, with search_path = network.
COMMENT ON SCHEMA network IS 'Virga network service';
