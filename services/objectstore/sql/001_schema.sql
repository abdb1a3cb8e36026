-- 001_schema: the objectstore schema exists from the first start; its tables arrive with
-- the issues that give the service its API.
COMMENT ON SCHEMA objectstore IS 'Virga objectstore service';
