-- Notification preferences: the kinds of notification a user turned off (JSON).
ALTER TABLE users ADD COLUMN preferences TEXT NOT NULL DEFAULT '{}';
