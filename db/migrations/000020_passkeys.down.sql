DROP TABLE IF EXISTS passkey_challenges;
DROP TABLE IF EXISTS passkeys;
