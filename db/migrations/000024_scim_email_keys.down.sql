DROP TABLE IF EXISTS directory_user_emails;
