-- One statement per commit (Store::commit): the row writes run as data-modifying CTEs beside the
-- audit entries, and this check aborts the statement, and with it every write, when a
-- compare-and-swap update found another version (the store then retries the commit step by
-- step in a transaction to say exactly which).
CREATE FUNCTION jitgate_all_applied(ok boolean) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION 'a compare-and-swap write found another version' USING ERRCODE = 'JG409';
    END IF;
    RETURN true;
END
$$;
