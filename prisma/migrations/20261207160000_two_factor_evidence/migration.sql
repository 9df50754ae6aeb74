-- Issue 14 §2: a policy that requires two-step verification is enforced on SSO sign-ins by the
-- IdP's evidence (SAML AuthnContextClassRef / amr attribute values, OIDC amr / acr). Each
-- connection may name the values it accepts; empty means the documented defaults.

-- AlterTable
ALTER TABLE "SsoConnection" ADD COLUMN "twoFactorValues" TEXT[];
