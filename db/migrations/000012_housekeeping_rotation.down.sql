DROP TABLE IF EXISTS housekeeping_rotation;
