-- The API's hourly purge of intents never delivered looks them up by age;
-- only the (rare) undelivered rows are indexed.
CREATE INDEX accepted_undelivered ON accepted_transactions (created_at) WHERE delivered = 0;
