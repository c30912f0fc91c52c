-- Reserved for another branch's migration (placeholder so the numbering stays contiguous).
SELECT 1;
