-- The API's hourly purge of intents never delivered looks them up by age.
CREATE INDEX accepted_delivered_created ON accepted_transactions (delivered, created_at);
