-- Which CARD_HASH_KEY a card_hash was made with (CARD_HASH_KEY_ID), so the
-- hash key can rotate: rows keep naming the key of their hash. Rows from
-- before this column have NULL (the key in use before any rotation).
ALTER TABLE transactions ADD COLUMN card_hash_key_id TEXT;
