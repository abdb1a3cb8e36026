-- 001_schema: the gateway schema exists from the first start; its tables arrive with
-- the issues that give the service its API.
COMMENT ON SCHEMA gateway IS 'Virga gateway service';
