-- Issue 13 (defect 6): attributes an identity provider sends that the schema does not know are
-- ignored on POST, PUT and PATCH alike (IdPs send custom mappings), and each is recorded once
-- per directory and resource type, so the admin sees it among the directory's sync issues.

-- CreateTable
CREATE TABLE "ScimIgnoredAttribute" (
    "directoryId" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "resourceType" TEXT NOT NULL,
    "attribute" TEXT NOT NULL,
    "firstSeenAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ScimIgnoredAttribute_pkey" PRIMARY KEY ("directoryId","resourceType","attribute")
);

-- AddForeignKey
ALTER TABLE "ScimIgnoredAttribute" ADD CONSTRAINT "ScimIgnoredAttribute_directoryId_fkey" FOREIGN KEY ("directoryId") REFERENCES "Directory"("id") ON DELETE CASCADE ON UPDATE CASCADE;
