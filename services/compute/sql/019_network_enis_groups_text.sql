-- 019_network_enis_groups_text: the interface's security groups also as the text
-- PostgreSQL writes for the jsonb, stored when the row is written (the network's pushes)
-- instead of made again for every row of every DescribeInstances page: jsonb's output
-- function was about 1 ms of PostgreSQL's CPU for a page of 1,000 (of 8-9 ms for the
-- page's statement; docs/performance.md, page9). The text is the cast's, so the answers
-- are byte for byte the former ones; writers still write groups only.
ALTER TABLE network_enis ADD COLUMN groups_text text GENERATED ALWAYS AS (groups::text) STORED;
