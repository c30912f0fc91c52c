-- Reserved for migration 18 (webhooks, another branch); the coordinator drops this file at merge.
SELECT 1;
