-- The address the IdP last sent for a SCIM user that its account could not take (another
-- account of the org holds it, or the account is shared with another SCIM user): the user
-- stays linked to its account and is listed as an `email-conflict` sync issue. Null otherwise.
ALTER TABLE "ScimUser" ADD COLUMN "pendingEmail" TEXT;
