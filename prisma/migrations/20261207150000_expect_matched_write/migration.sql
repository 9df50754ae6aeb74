-- Issue 13 (PATCH speed): a SCIM user's write sends its UPDATE and the COMMIT without waiting for
-- the UPDATE's answer in between (one round trip less). The UPDATE matches by construction (the
-- transaction holds the row's lock), but the database says so itself: the UPDATE's statement
-- asserts its own match (a CTE over its RETURNING), and a miss fails the transaction with 40001
-- (serialization failure: the service runs it again) instead of committing the audit and account
-- rows sent behind it around a write that did not happen.
CREATE FUNCTION orgsync_expect(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION '% was changed by another transaction', what USING ERRCODE = '40001';
  END IF;
  RETURN true;
END
$$;
