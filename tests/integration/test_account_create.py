"""Creating an account is all or nothing: the account, its administrator user and its
first access key commit together. A failure at the last step (here the key insert,
made to fail by a trigger the test installs in the database) leaves no half-made
account behind, so creating it again succeeds."""
import json

import pytest

FAIL_KEYS = """
CREATE OR REPLACE FUNCTION identity.test_fail_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM identity.users u JOIN identity.accounts a ON a.id = u.account_id
             WHERE u.id = NEW.user_id AND a.name LIKE 'keyfail-%') THEN
    RAISE EXCEPTION 'test: access key insert refused';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER test_fail_key BEFORE INSERT ON identity.access_keys
  FOR EACH ROW EXECUTE FUNCTION identity.test_fail_key();
"""
UNDO = "DROP TRIGGER IF EXISTS test_fail_key ON identity.access_keys; DROP FUNCTION IF EXISTS identity.test_fail_key();"


@pytest.fixture
def failing_key_inserts(cloud):
    cloud.psql(FAIL_KEYS)
    try:
        yield
    finally:
        cloud.psql(UNDO)


def test_failed_key_insert_leaves_no_account_and_it_can_be_created_again(cloud, failing_key_inserts):
    r = cloud.virgadm("account", "create", "keyfail-one")
    assert r.returncode != 0
    assert "InternalError" in r.stderr or "ServiceUnavailable" in r.stderr, r.stderr
    assert cloud.psql("SELECT count(*) FROM identity.accounts WHERE name = 'keyfail-one'") == "0"
    assert cloud.psql("SELECT count(*) FROM identity.users u LEFT JOIN identity.accounts a ON a.id = u.account_id "
                      "WHERE a.id IS NULL") == "0"

    cloud.psql(UNDO)   # the database works again
    r = cloud.virgadm("account", "create", "keyfail-one")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert made["access_key_id"].startswith("AKIA") and len(made["secret_access_key"]) == 40
    assert cloud.psql("SELECT count(*) FROM identity.access_keys k JOIN identity.users u ON u.id = k.user_id "
                      "WHERE u.account_id = '%s'" % made["account_id"]) == "1"
    # leave the session's cloud as it was (other tests count its access keys)
    r = cloud.virgadm("account", "delete", made["account_id"])
    assert r.returncode == 0, r.stderr
