-- CreateTable
CREATE TABLE "dedupe_keys" (
    "dedupe_key" TEXT NOT NULL,
    "event_id" BIGINT NOT NULL,
    "claimed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dedupe_keys_pkey" PRIMARY KEY ("dedupe_key")
);

-- CreateTable
CREATE TABLE "identities" (
    "email" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "identities_pkey" PRIMARY KEY ("email")
);
